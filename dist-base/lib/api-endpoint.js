import { Duration, Validations } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import { Construct } from 'constructs';
import { API_PORT } from './config.js';
/**
 * HTTPS without owning a domain: a CloudFront distribution (its *.cloudfront.net name and
 * certificate) in front of the master, reached through a VPC origin so the master has no public
 * address. Nothing is cached; allowedCidr is enforced by a viewer-request CloudFront Function.
 */
export class ApiEndpoint extends Construct {
    distribution;
    url;
    constructor(scope, id, props) {
        super(scope, id);
        const allowList = new cloudfront.Function(this, 'AllowedCidr', {
            comment: `DIPS API: only ${props.allowedCidr} may call`,
            runtime: cloudfront.FunctionRuntime.JS_2_0,
            code: cloudfront.FunctionCode.fromInline(allowedCidrFunction(props.allowedCidr)),
        });
        this.distribution = new cloudfront.Distribution(this, 'Distribution', {
            comment: 'DIPS API and console',
            priceClass: cloudfront.PriceClass.PRICE_CLASS_100,
            defaultBehavior: {
                origin: origins.VpcOrigin.withEc2Instance(props.master, {
                    httpPort: API_PORT,
                    protocolPolicy: cloudfront.OriginProtocolPolicy.HTTP_ONLY,
                    // The longest CloudFront allows without a quota increase: a response (or an event stream)
                    // silent for longer is cut. Also the keep-alive of idle connections to the master.
                    readTimeout: Duration.seconds(60),
                    keepaliveTimeout: Duration.seconds(60),
                }),
                viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
                // Nothing cached: every answer is per job and per token. With caching off, AllViewer
                // forwards the Authorization header too.
                cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
                originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
                compress: false,
                functionAssociations: [{ function: allowList, eventType: cloudfront.FunctionEventType.VIEWER_REQUEST }],
            },
        });
        this.url = `https://${this.distribution.distributionDomainName}`;
        Validations.of(this.distribution).acknowledge({ id: 'AwsSolutions::AwsSolutions-CFR1', reason: 'Access is limited to allowedCidr by the viewer-request function, which is narrower than any geo restriction' }, { id: 'AwsSolutions::AwsSolutions-CFR2', reason: 'allowedCidr is enforced by a CloudFront Function; WAF would add $5+/month for the same rule (docs/deploy.md)' }, { id: 'AwsSolutions::AwsSolutions-CFR3', reason: 'The master logs every request itself to CloudWatch Logs; CloudFront access logs would need a bucket outliving the stack' }, { id: 'AwsSolutions::AwsSolutions-CFR4', reason: "No domain is owned, so the default *.cloudfront.net certificate is used, whose minimum protocol CloudFront fixes" }, { id: 'AwsSolutions::AwsSolutions-CFR5', reason: 'The origin is a VPC origin: CloudFront reaches the master over the AWS network inside the VPC, never over the internet' });
    }
}
/** The viewer-request function: 403 unless the caller's IPv4 address lies in `cidr`. */
export function allowedCidrFunction(cidr) {
    const [base, bits] = cidr.split('/');
    const toNumber = (address) => address.split('.').reduce((value, octet) => value * 256 + Number(octet), 0);
    const size = 2 ** (32 - Number(bits));
    const low = Math.floor(toNumber(base) / size) * size;
    return `function handler(event) {
  var parts = event.viewer.ip.split('.');
  var address = parts.length === 4 ? ((+parts[0] * 256 + +parts[1]) * 256 + +parts[2]) * 256 + +parts[3] : -1;
  if (address >= ${low} && address < ${low + size}) return event.request;
  return { statusCode: 403, statusDescription: 'Forbidden', headers: { 'content-type': { value: 'application/json' } },
    body: '{"error":{"code":"forbidden","message":"this address may not call the DIPS API (allowedCidr)"}}' };
}`;
}
//# sourceMappingURL=api-endpoint.js.map