import exifReader from 'exif-reader';
import sharp from 'sharp';
/** TIFF structure tags (offsets of other blocks inside the EXIF data), meaningless to a reader. */
const POINTER_TAGS = new Set(['ExifTag', 'GPSTag', 'InteroperabilityTag']);
/** Tags values longer than this (maker notes, thumbnails as text) are left out of the report. */
const MAX_VALUE_LENGTH = 200;
/** The ICC profile's description: tag 'desc', in the v2 'desc' or the v4 'mluc' encoding. */
export function iccProfileName(icc) {
    if (icc.length < 132)
        return undefined;
    const tagCount = icc.readUInt32BE(128);
    for (let i = 0; i < tagCount && 132 + 12 * (i + 1) <= icc.length; i++) {
        const entry = 132 + 12 * i;
        if (icc.toString('latin1', entry, entry + 4) !== 'desc')
            continue;
        const offset = icc.readUInt32BE(entry + 4);
        const type = icc.toString('latin1', offset, offset + 4);
        if (type === 'desc') {
            const length = icc.readUInt32BE(offset + 8);
            return icc.toString('latin1', offset + 12, offset + 12 + length).replace(/\0+$/, '') || undefined;
        }
        if (type === 'mluc') {
            // 'mluc', reserved, record count, record size; then the first record: language, country, length, offset.
            const recordLength = icc.readUInt32BE(offset + 20);
            const recordOffset = icc.readUInt32BE(offset + 24);
            const utf16 = icc.subarray(offset + recordOffset, offset + recordOffset + recordLength);
            return Buffer.from(utf16).swap16().toString('utf16le').replace(/\0+$/, '') || undefined;
        }
    }
    return undefined;
}
/** EXIF values as JSON-friendly scalars; buffers and long values are dropped. */
function reportable(group) {
    if (!group)
        return undefined;
    const out = {};
    for (const [tag, value] of Object.entries(group)) {
        if (POINTER_TAGS.has(tag))
            continue;
        let shown = value;
        if (value instanceof Date)
            shown = Number.isNaN(value.getTime()) ? undefined : value.toISOString();
        else if (Array.isArray(value))
            shown = value.every((v) => typeof v === 'number') ? value.join(' ') : undefined;
        if (typeof shown === 'string')
            shown = shown.replace(/\0+$/, '');
        if ((typeof shown === 'string' && shown.length <= MAX_VALUE_LENGTH) || typeof shown === 'number' || typeof shown === 'boolean') {
            out[tag] = shown;
        }
    }
    return Object.keys(out).length ? out : undefined;
}
/** Degrees, minutes, seconds and a hemisphere letter as signed decimal degrees. */
function degrees(dms, ref) {
    if (!Array.isArray(dms) || dms.length !== 3 || !dms.every((v) => typeof v === 'number' && Number.isFinite(v)))
        return undefined;
    const value = dms[0] + dms[1] / 60 + dms[2] / 3600;
    return ref === 'S' || ref === 'W' ? -value : value;
}
/** The EXIF block parsed; a malformed one is reported as absent rather than failing the image. */
function parseExif(exif) {
    if (!exif)
        return undefined;
    try {
        return exifReader(exif);
    }
    catch {
        return undefined;
    }
}
/** Header facts of an input file: format, size, colour, ICC profile name, EXIF with GPS flagged. */
export async function describeSource(input) {
    const meta = await sharp(input, { limitInputPixels: false }).metadata();
    const exif = parseExif(meta.exif);
    const gpsTags = exif?.GPSInfo && Object.keys(exif.GPSInfo).length ? exif.GPSInfo : undefined;
    const latitude = degrees(gpsTags?.GPSLatitude, gpsTags?.GPSLatitudeRef);
    const longitude = degrees(gpsTags?.GPSLongitude, gpsTags?.GPSLongitudeRef);
    const groups = { Image: reportable(exif?.Image), Photo: reportable(exif?.Photo) };
    const exifReport = Object.fromEntries(Object.entries(groups).filter(([, tags]) => tags !== undefined));
    const iccProfile = meta.icc ? iccProfileName(meta.icc) : undefined;
    return {
        format: meta.format === 'heif' && meta.compression === 'av1' ? 'avif' : meta.format,
        width: meta.width,
        height: meta.height,
        channels: meta.channels,
        space: meta.space,
        hasAlpha: meta.hasAlpha,
        ...(meta.orientation ? { orientation: meta.orientation } : {}),
        ...(iccProfile ? { iccProfile } : {}),
        ...(exifReport && Object.keys(exifReport).length ? { exif: exifReport } : {}),
        gps: gpsTags !== undefined,
        ...(latitude !== undefined && longitude !== undefined ? { location: { latitude, longitude } } : {}),
    };
}
/** Tags libvips writes itself from the output image, or that no longer describe it. */
const REWRITTEN_TAGS = new Set([...POINTER_TAGS, 'Orientation', 'PixelXDimension', 'PixelYDimension', 'ImageWidth', 'ImageLength']);
/** A date as EXIF writes it: "YYYY:MM:DD HH:MM:SS" (exif-reader reads it as UTC). */
const exifDate = (date) => date.toISOString().replace(/^(\d+)-(\d+)-(\d+)T(\d+:\d+:\d+).*$/, '$1:$2:$3 $4');
/** sharp's withExif form (string values by IFD) of an EXIF block's main and Exif IFDs, GPS left out. */
export function exifWithoutGps(exif) {
    const parsed = parseExif(exif);
    if (!parsed)
        return undefined;
    const strings = (group) => {
        const out = {};
        for (const [tag, value] of Object.entries(group ?? {})) {
            if (REWRITTEN_TAGS.has(tag) || Buffer.isBuffer(value))
                continue;
            if (value instanceof Date) {
                if (!Number.isNaN(value.getTime()))
                    out[tag] = exifDate(value);
            }
            else if (Array.isArray(value))
                out[tag] = value.join(' ');
            else if (value !== undefined && value !== null)
                out[tag] = String(value);
        }
        return Object.keys(out).length ? out : undefined;
    };
    const IFD0 = strings(parsed.Image);
    const IFD2 = strings(parsed.Photo);
    if (!IFD0 && !IFD2)
        return undefined;
    return { ...(IFD0 ? { IFD0 } : {}), ...(IFD2 ? { IFD2 } : {}) };
}
//# sourceMappingURL=source-metadata.js.map