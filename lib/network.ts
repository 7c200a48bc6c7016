import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { API_PORT, WORKER_PORT } from './config.js';

export interface NetworkProps {
  /** The only network allowed to reach the master's API. */
  allowedCidr: string;
}

/**
 * VPC over two AZs with public subnets only: no NAT gateway and no interface endpoints (see
 * docs/deploy.md for the cost comparison). Instances get a public IPv4 for AWS API calls; inbound
 * traffic is limited by the security groups, S3 traffic goes through the free gateway endpoint.
 */
export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  readonly masterSecurityGroup: ec2.SecurityGroup;
  readonly workerSecurityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });
    const flowLogGroup = new logs.LogGroup(this, 'FlowLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc.addFlowLog('FlowLog', { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogGroup) });

    // Egress is limited to what the instances need: HTTPS for AWS APIs (S3, Secrets Manager,
    // Auto Scaling, EC2, Session Manager), HTTP for Ubuntu's security updates, and each other.
    this.masterSecurityGroup = new ec2.SecurityGroup(this, 'MasterSecurityGroup', {
      vpc: this.vpc,
      description: `DIPS master: API port ${API_PORT} from the allowed CIDR only`,
      allowAllOutbound: false,
    });
    this.workerSecurityGroup = new ec2.SecurityGroup(this, 'WorkerSecurityGroup', {
      vpc: this.vpc,
      description: `DIPS workers: port ${WORKER_PORT} from the master only`,
      allowAllOutbound: false,
    });
    this.masterSecurityGroup.addIngressRule(ec2.Peer.ipv4(props.allowedCidr), ec2.Port.tcp(API_PORT), 'DIPS API from the allowed CIDR');
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
