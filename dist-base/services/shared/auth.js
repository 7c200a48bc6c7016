import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError } from './http-error.js';
const digest = (value) => createHash('sha256').update(value).digest();
/**
 * Whether an Authorization header carries the shared secret. Both sides are hashed first so the
 * comparison takes the same time whatever the length or content of the presented value.
 */
function bearerMatches(header, token) {
    const presented = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : '';
    return timingSafeEqual(digest(presented), digest(token)) && presented.length > 0;
}
/**
 * Express middleware: 401 unless the request holds the token (no-op when no token is configured).
 * `secretName` tells the caller which secret was expected: the client's or the workers'.
 */
export function requireToken(token, secretName = 'DIPS_TOKEN') {
    return (req, _res, next) => {
        if (token === undefined || bearerMatches(req.headers.authorization, token))
            return next();
        next(new HttpError(401, 'unauthorized', `missing or wrong bearer token (Authorization: Bearer <${secretName}>)`));
    };
}
/** Headers for requests to another DIPS process holding the same secret. */
export function authHeaders(token) {
    return token === undefined ? {} : { authorization: `Bearer ${token}` };
}
//# sourceMappingURL=auth.js.map