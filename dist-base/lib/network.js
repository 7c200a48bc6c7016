import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { API_PORT, WORKER_PORT } from './config.js';
/**
 * VPC over two AZs. Workers sit in public subnets with a public IPv4 for their AWS API calls (no NAT
 * gateway, no interface endpoints: docs/deploy.md compares the costs). The master sits in a private
 * subnet, as CloudFront VPC origins require, and reaches AWS through a small NAT instance. Inbound
 * traffic is limited by the security groups; S3 traffic goes through the free gateway endpoint.
 */
export class Network extends Construct {
    vpc;
    masterSecurityGroup;
    workerSecurityGroup;
    constructor(scope, id) {
        super(scope, id);
        const nat = ec2.NatProvider.instanceV2({
            instanceType: new ec2.InstanceType('t4g.nano'),
            machineImage: ec2.MachineImage.latestAmazonLinux2023({ cpuType: ec2.AmazonLinuxCpuType.ARM_64 }),
            defaultAllowedTraffic: ec2.NatTrafficDirection.OUTBOUND_ONLY,
        });
        this.vpc = new ec2.Vpc(this, 'Vpc', {
            maxAzs: 2,
            // One NAT instance (t4g.nano, about $3/month) instead of a NAT gateway ($33/month): only the
            // master's AWS API calls and updates pass through it. Amazon Linux, stateless: replacing it costs nothing.
            natGateways: 1,
            natGatewayProvider: nat,
            subnetConfiguration: [
                { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
                { name: 'master', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 24 },
            ],
            gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
        });
        for (const instance of nat.gatewayInstances) {
            Validations.of(instance).acknowledge({ id: 'AwsSolutions::AwsSolutions-EC26', reason: 'The NAT instance stores nothing: its root volume holds the stock Amazon Linux image only' }, { id: 'AwsSolutions::AwsSolutions-EC28', reason: 'Basic monitoring suffices for a stateless NAT instance' }, { id: 'AwsSolutions::AwsSolutions-EC29', reason: 'The NAT instance is stateless and must go with cdk destroy' });
        }
        const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
            retention: logs.RetentionDays.ONE_MONTH,
            removalPolicy: RemovalPolicy.DESTROY,
        });
        this.vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup) });
        // Egress is limited to what the instances need: HTTPS for AWS APIs (S3, Secrets Manager,
        // Auto Scaling, EC2, Session Manager), HTTP for Ubuntu's security updates, and each other.
        this.masterSecurityGroup = new ec2.SecurityGroup(this, 'MasterSecurityGroup', {
            vpc: this.vpc,
            description: `DIPS master: API port ${API_PORT} from inside the VPC only (CloudFront VPC origin and workers)`,
            allowAllOutbound: false,
        });
        this.workerSecurityGroup = new ec2.SecurityGroup(this, 'WorkerSecurityGroup', {
            vpc: this.vpc,
            description: `DIPS workers: port ${WORKER_PORT} from the master only`,
            allowAllOutbound: false,
        });
        // CloudFront's VPC origin reaches the master through network interfaces in the VPC's subnets, so
        // its requests come from VPC addresses; allowedCidr is enforced at CloudFront (lib/api-endpoint.ts).
        Validations.of(this.masterSecurityGroup).acknowledge({
            id: 'AwsSolutions::AwsSolutions-EC23',
            reason: "The only CIDR rule is the VPC's own block (a token nag cannot read), not 0.0.0.0/0",
        });
        this.masterSecurityGroup.addIngressRule(ec2.Peer.ipv4(this.vpc.vpcCidrBlock), ec2.Port.tcp(API_PORT), 'DIPS API from the CloudFront VPC origin');
        // Workers register and heartbeat with the master's API from inside the VPC.
        this.masterSecurityGroup.addIngressRule(this.workerSecurityGroup, ec2.Port.tcp(API_PORT), 'DIPS API from workers');
        this.workerSecurityGroup.addIngressRule(this.masterSecurityGroup, ec2.Port.tcp(WORKER_PORT), 'DIPS work from the master');
        this.masterSecurityGroup.addEgressRule(this.workerSecurityGroup, ec2.Port.tcp(WORKER_PORT), 'DIPS work to workers');
        this.workerSecurityGroup.addEgressRule(this.masterSecurityGroup, ec2.Port.tcp(API_PORT), 'DIPS registration and heartbeats');
        for (const group of [this.masterSecurityGroup, this.workerSecurityGroup]) {
            group.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'AWS APIs and Session Manager');
            group.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(80), 'Ubuntu security updates');
        }
    }
}
//# sourceMappingURL=network.js.map