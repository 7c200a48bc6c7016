/** The address a server listens on to take every IPv4 interface: a URL naming it reaches no particular machine. */
const everyInterface = /^http:\/\/0\.0\.0\.0(?=[:/])/;
/**
 * A URL as the client who sent `req` can reach it. The storage service listens where the master does
 * (DIPS_HOST); listening on every interface, its URL names no host, so it takes the host the client
 * reached the master at, with the service's own port. Every other URL (S3's, an explicit
 * DIPS_STORAGE_URL, a path on the master) is answered as it is.
 */
export function reachableBy(req, url) {
    return everyInterface.test(url) ? url.replace(everyInterface, `http://${req.hostname}`) : url;
}
//# sourceMappingURL=client-urls.js.map