import * as ec2 from 'aws-cdk-lib/aws-ec2';
/** The root volume every DIPS instance boots from: Ubuntu's /dev/sda1, encrypted gp3. */
export function encryptedRootVolume(sizeGiB) {
    return [{ deviceName: '/dev/sda1', volume: ec2.BlockDeviceVolume.ebs(sizeGiB, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }) }];
}
//# sourceMappingURL=root-volume.js.map