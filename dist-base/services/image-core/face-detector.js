import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { applySharp } from './sharp-raw.js';
/** BlazeFace's input: windows are resized to this square (the model's own input size). */
const DETECTOR_SIDE = 256;
/** Lowest confidence kept (BlazeFace's proposals and FaceMesh's confirmation); callers filter above it. */
export const LOWEST_CONFIDENCE = 0.3;
/** Faces reported per window at most (a crowd fills a window with at most a few dozen). */
const FACES_PER_WINDOW = 50;
/** Boxes from overlapping windows that overlap more than this (intersection over union) are one face. */
const SAME_FACE_IOU = 0.3;
/** Window levels: squares of the image's short side, then of half of it, so faces down to ~3% of the short side are found. */
const WINDOW_LEVELS = 2;
/** A level whose windows would be smaller than this is skipped (upscaling finds nothing new). */
const SMALLEST_WINDOW = 128;
/** Faces under about 20 px are not found (bench/faces.ts: 26 px found, 18 px not): thinner images hold none. */
const SMALLEST_FACE = 20;
// CommonJS, as Human's build loads tfjs: the load router must be registered on that same tfjs instance.
const require = createRequire(import.meta.url);
let detectorReady;
/** Detections run one at a time: the model holds state between calls (one Human per process). */
let queue = Promise.resolve();
/** Files of the package that holds `entry` (resolved as Node resolves it), e.g. its models/ folder. */
function packageFile(entry, ...relative) {
    return path.join(path.dirname(require.resolve(entry)), ...relative);
}
/**
 * tfjs loads models by URL; Node's fetch has no file: scheme. This router serves file:// model URLs
 * from disk (model.json and the weight files it names), so nothing goes to the network.
 */
function fileModelRouter(tf) {
    return (url) => {
        // tfjs' router contract: null means "not mine" (its type says IOHandler only).
        if (typeof url !== 'string' || !url.startsWith('file://'))
            return null;
        const modelFile = fileURLToPath(url);
        return {
            load: async () => {
                const modelJson = JSON.parse(await readFile(modelFile, 'utf8'));
                return tf.io.getModelArtifactsForJSON(modelJson, async (manifest) => {
                    const files = manifest.flatMap((group) => group.paths.map((file) => readFile(path.join(path.dirname(modelFile), file))));
                    const weights = Buffer.concat(await Promise.all(files));
                    const buffer = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength);
                    return [manifest.flatMap((group) => group.weights), buffer];
                });
            },
        };
    };
}
function loadDetector() {
    detectorReady ??= (async () => {
        const tf = require('@tensorflow/tfjs-core');
        require('@tensorflow/tfjs-backend-wasm');
        tf.io.registerLoadRouter(fileModelRouter(tf));
        // Its exports map cannot name the WebAssembly build (the keys lack './'): it lies beside the Node entry.
        const { Human } = require(packageFile('@vladmandic/human', 'human.node-wasm.js'));
        const off = { enabled: false };
        const human = new Human({
            backend: 'wasm',
            wasmPath: `${packageFile('@tensorflow/tfjs-backend-wasm')}${path.sep}`,
            wasmPlatformFetch: false,
            modelBasePath: `${pathToFileURL(packageFile('@vladmandic/human', '..', 'models')).href}/`,
            debug: false,
            // Every image is judged on its own: no reuse of the previous "frame"'s boxes.
            cacheSensitivity: 0,
            filter: off,
            face: {
                enabled: true,
                detector: { modelPath: 'blazeface.json', rotation: false, maxDetected: FACES_PER_WINDOW, minConfidence: LOWEST_CONFIDENCE, skipFrames: 0, skipTime: 0, iouThreshold: SAME_FACE_IOU, return: false },
                mesh: { enabled: true, modelPath: 'facemesh.json' }, iris: off, description: off, emotion: off, antispoof: off, liveness: off, attention: off, gear: off,
            },
            body: off, hand: off, object: off, gesture: off, segmentation: off,
        });
        await human.load();
        return { human, tf };
    })().catch((error) => {
        detectorReady = undefined; // let the next image try again
        throw error;
    });
    return detectorReady;
}
/** Window squares per level: their side and how many fit along each axis (see detectionWindows). */
function windowLevels(width, height) {
    const levels = [];
    if (Math.min(width, height) < SMALLEST_FACE)
        return levels;
    for (let level = 0; level < WINDOW_LEVELS; level++) {
        const side = Math.floor(Math.min(width, height) / 2 ** level);
        if (level > 0 && side < SMALLEST_WINDOW)
            break;
        const fit = (length) => Math.ceil((length - side) / (side / 2)) + 1;
        levels.push({ side, across: fit(width), down: fit(height) });
    }
    return levels;
}
/** How many windows detection looks at: the cost of an image depends on this, not on its pixels. */
export function detectionWindowCount(width, height) {
    return windowLevels(width, height).reduce((sum, { across, down }) => sum + across * down, 0);
}
/**
 * Squares covering the image at each level: side = short side / 2^level, half-overlapping, the last
 * one flush with the edge. BlazeFace sees squares (it squashes anything else), so a wide photo is
 * looked at in overlapping squares, and the second level finds faces too small for the first.
 */
export function detectionWindows(width, height) {
    const windows = [];
    for (const { side, across, down } of windowLevels(width, height)) {
        const starts = (length, count) => Array.from({ length: count }, (_, i) => (count === 1 ? 0 : Math.round(((length - side) * i) / (count - 1))));
        for (const y of starts(height, down))
            for (const x of starts(width, across))
                windows.push({ x, y, width: side, height: side });
    }
    return windows;
}
/**
 * The window as the detector's RGB input: cut and resized to its square by libvips (which reads only
 * the window, so a huge image is not copied), grey repeated, alpha dropped.
 */
async function detectorInput(image, window) {
    const area = { left: window.x, top: window.y, width: window.width, height: window.height };
    const square = await applySharp(image, (pipeline) => pipeline.extract(area).resize(DETECTOR_SIDE, DETECTOR_SIDE, { fit: 'fill' }));
    const colour = square.channels >= 3;
    const rgb = new Int32Array(DETECTOR_SIDE * DETECTOR_SIDE * 3);
    for (let p = 0, i = 0; p < rgb.length; p += 3, i += square.channels) {
        rgb[p] = square.data[i];
        rgb[p + 1] = square.data[colour ? i + 1 : i];
        rgb[p + 2] = square.data[colour ? i + 2 : i];
    }
    return rgb;
}
async function detectInWindows(image, signal) {
    const windows = detectionWindows(image.width, image.height);
    if (windows.length === 0)
        return [];
    const { human, tf } = await loadDetector();
    const found = [];
    for (const window of windows) {
        signal?.throwIfAborted();
        const input = tf.tensor3d(await detectorInput(image, window), [DETECTOR_SIDE, DETECTOR_SIDE, 3], 'int32');
        try {
            const result = await human.detect(input);
            if (result.error)
                throw new Error(`face detection failed: ${result.error}`);
            for (const face of result.face) {
                const [x, y, width, height] = face.boxRaw; // fractions of the window (FaceMesh's box)
                found.push({ x: window.x + x * window.width, y: window.y + y * window.height, width: width * window.width, height: height * window.height, score: Math.min(face.boxScore, face.faceScore) });
            }
        }
        finally {
            input.dispose();
        }
    }
    return mergeOverlapping(tf, found);
}
/** One box per face: of boxes from overlapping windows that cover the same face, the most confident. */
async function mergeOverlapping(tf, faces) {
    if (faces.length === 0)
        return [];
    const boxes = tf.tensor2d(faces.map((f) => [f.y, f.x, f.y + f.height, f.x + f.width]));
    const scores = tf.tensor1d(faces.map((f) => f.score));
    const kept = await tf.image.nonMaxSuppressionAsync(boxes, scores, faces.length, SAME_FACE_IOU, LOWEST_CONFIDENCE);
    const indices = Array.from(await kept.data());
    tf.dispose([boxes, scores, kept]);
    return indices.map((i) => faces[i]);
}
/** Every face found in the image (any channel count), in image pixels, most confident first. */
export function detectFaces(image, signal) {
    const run = queue.then(() => detectInWindows(image, signal));
    queue = run.catch(() => undefined);
    return run;
}
//# sourceMappingURL=face-detector.js.map