import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeImage } from '../../services/image-core/decode.js';
import { PipelineError } from '../../services/image-core/errors.js';
import { detectFaces } from '../../services/image-core/face-detector.js';
import type { BlurredFace } from '../../services/image-core/operations/blurfaces.js';
import { outputSizeOf, parsePipeline, runSteps } from '../../services/image-core/pipeline.js';
import type { RawImage, Rect } from '../../services/image-core/raw-image.js';
import { corpus } from '../helpers/api.js';

const decode = (name: string) => decodeImage(corpus(name), { maxPixels: 10_000_000, name });

async function blurfaces(image: RawImage, params: Record<string, unknown> = {}) {
  const { image: output, annotations } = await runSteps(image, parsePipeline([{ op: 'blurfaces', ...params }]));
  return { output, faces: annotations.blurfaces as BlurredFace[] };
}

const inside = (x: number, y: number, box: Rect) => x >= box.x && x < box.x + box.width && y >= box.y && y < box.y + box.height;

/** Mean absolute difference of the colour samples inside `box`, and whether every sample outside the boxes is the same. */
function compare(input: RawImage, output: RawImage, box: Rect, boxes: Rect[], colourChannels: number) {
  let differenceInside = 0;
  let samplesInside = 0;
  let changedOutside = 0;
  for (let y = 0; y < input.height; y++) {
    for (let x = 0; x < input.width; x++) {
      const at = (y * input.width + x) * input.channels;
      for (let c = 0; c < input.channels; c++) {
        const difference = Math.abs(input.data[at + c] - output.data[at + c]);
        if (c < colourChannels && inside(x, y, box)) {
          differenceInside += difference;
          samplesInside++;
        } else if (!boxes.some((b) => inside(x, y, b)) && difference !== 0) changedOutside++;
      }
    }
  }
  return { meanDifferenceInside: differenceInside / samplesInside, changedOutside };
}

/** The astronaut photo with an alpha channel that varies across the image. */
async function astronautWithAlpha(): Promise<RawImage> {
  const rgb = await decode('faces/astronaut.jpg');
  const data = Buffer.alloc(rgb.width * rgb.height * 4);
  for (let p = 0; p < rgb.width * rgb.height; p++) {
    rgb.data.copy(data, p * 4, p * 3, p * 3 + 3);
    data[p * 4 + 3] = 64 + ((p * 7) % 192);
  }
  return { data, width: rgb.width, height: rgb.height, channels: 4 };
}

// The model and the WebAssembly runtime come from the installed packages: any fetch is a download.
beforeAll(() => {
  vi.stubGlobal('fetch', () => Promise.reject(new Error('blurfaces must not use the network')));
});
afterAll(() => {
  vi.unstubAllGlobals();
});

describe('blurfaces', () => {
  it('finds the face in a photo, blurs it beyond recognition and leaves the rest and alpha alone', async () => {
    const input = await astronautWithAlpha();
    const { output, faces } = await blurfaces(input);

    // Eileen Collins' face: about 140 px, centred near (224, 125) (the PNG she comes from, measured by eye).
    expect(faces).toHaveLength(1);
    const [face] = faces;
    expect(face.score).toBeGreaterThan(0.8);
    expect(inside(224, 125, face)).toBe(true);
    expect(face.width).toBeGreaterThan(120);
    expect(face.width).toBeLessThan(300);

    expect(output.channels).toBe(4);
    const { meanDifferenceInside, changedOutside } = compare(input, output, face, faces, 3);
    expect(meanDifferenceInside, 'mean colour change inside the box').toBeGreaterThan(12);
    expect(changedOutside, 'samples changed outside the box, alpha included').toBe(0);
    for (let p = 3; p < input.data.length; p += 4) if (input.data[p] !== output.data[p]) throw new Error(`alpha changed at sample ${p}`);

    // What a user wants: no face is found any more where there was one.
    const after = await detectFaces(output);
    expect(after.filter((f) => f.score >= 0.6)).toEqual([]);
  });

  it('keeps a grey photo grey and blurs the face in it', async () => {
    const input = await decode('faces/cameraman.jpg');
    expect(input.channels).toBe(1);
    const { output, faces } = await blurfaces(input);
    expect(output.channels).toBe(1);
    // The cameraman's face, in near profile, centred near (225, 160).
    expect(faces).toHaveLength(1);
    expect(inside(225, 160, faces[0])).toBe(true);
    const { meanDifferenceInside, changedOutside } = compare(input, output, faces[0], faces, 1);
    expect(meanDifferenceInside).toBeGreaterThan(8);
    expect(changedOutside).toBe(0);
  });

  it('leaves a photo without faces untouched', async () => {
    // Ladybirds and leaves: what BlazeFace alone takes for faces (FaceMesh confirms none).
    const input = await decode('ladybird.jpg');
    const { output, faces } = await blurfaces(input);
    expect(faces).toEqual([]);
    expect(output.data.equals(input.data)).toBe(true);
  });

  it('refuses parameters out of range, naming them', () => {
    expect(() => parsePipeline([{ op: 'blurfaces', minConfidence: 0.05 }])).toThrow(PipelineError);
    expect(() => parsePipeline([{ op: 'blurfaces', minConfidence: 0.05 }])).toThrow(/minConfidence/);
    expect(() => parsePipeline([{ op: 'blurfaces', strength: 3 }])).toThrow(/strength/);
  });

  it('refuses at submission an image so elongated that detection would take minutes, and passes a thin strip untouched', async () => {
    const [step] = parsePipeline([{ op: 'blurfaces' }]);
    expect(outputSizeOf(step, { width: 1400, height: 875 })).toEqual({ width: 1400, height: 875 });
    expect(() => outputSizeOf(step, { width: 100_000, height: 24 })).toThrow(/blurfaces: a 100000x24 image needs 8333 detection windows/);
    // Thinner than the smallest face found: nothing to look for.
    const strip: RawImage = { data: Buffer.alloc(5000 * 10 * 3, 128), width: 5000, height: 10, channels: 3 };
    const { output, faces } = await blurfaces(strip);
    expect(faces).toEqual([]);
    expect(output.data.equals(strip.data)).toBe(true);
  });
});
