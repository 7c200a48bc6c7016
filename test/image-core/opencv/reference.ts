/**
 * OpenCV's own results, for the parity tests: OpenCV 4.12 compiled to WebAssembly
 * (@techstark/opencv-js), installed by npm like any other dependency, so the tests need no system
 * package. Images go in and come out as DIPS RawImages (RGB or grey), so both sides see the same pixels.
 */
import { createRequire } from 'node:module';
import type CvModule from '@techstark/opencv-js';
import { rawImage, type RawImage } from '../../../services/image-core/raw-image.js';

type OpenCv = typeof CvModule;
/** Loaded with require, not import: a dynamic import (as the test runner does) would await the thenable. */
const cvModule = createRequire(import.meta.url)('@techstark/opencv-js') as OpenCv;
type Mat = InstanceType<OpenCv['Mat']>;

let ready: Promise<{ cv: OpenCv }> | undefined;

/**
 * The initialised module, always wrapped in an object: the module is a thenable that resolves to
 * itself, so a promise resolved with it (or an `await` of it) never settles.
 */
function openCv(): Promise<{ cv: OpenCv }> {
  ready ??= new Promise((resolve) => {
    if (cvModule.Mat) resolve({ cv: cvModule });
    else cvModule.onRuntimeInitialized = () => resolve({ cv: cvModule });
  });
  return ready;
}

/** Runs `work` on Mats built from the images and frees every Mat it made, whatever happens. */
async function withMats(images: readonly RawImage[], work: (cv: OpenCv, mats: Mat[], keep: (mat: Mat) => Mat) => Mat): Promise<RawImage> {
  const { cv } = await openCv();
  const made: Mat[] = [];
  const keep = (mat: Mat): Mat => {
    made.push(mat);
    return mat;
  };
  try {
    const inputs = images.map((image) => {
      if (image.channels !== 1 && image.channels !== 3) throw new Error(`the reference takes grey or RGB, not ${image.channels} channels`);
      const mat = keep(new cv.Mat(image.height, image.width, image.channels === 1 ? cv.CV_8UC1 : cv.CV_8UC3));
      mat.data.set(image.data);
      return mat;
    });
    const result = work(cv, inputs, keep);
    return rawImage(Buffer.from(result.data), result.cols, result.rows, result.channels());
  } finally {
    for (const mat of made) mat.delete();
  }
}

const grey = (cv: OpenCv, rgb: Mat, keep: (mat: Mat) => Mat): Mat => {
  const out = keep(new cv.Mat());
  cv.cvtColor(rgb, out, cv.COLOR_RGB2GRAY);
  return out;
};

/** The reference cases by name, each from an RGB image (as the parity test names them). */
export const references: Record<string, (rgb: RawImage) => Promise<RawImage>> = {
  grayscale: (rgb) => withMats([rgb], (cv, [m], keep) => grey(cv, m!, keep)),
  'edges-100-200': (rgb) => canny(rgb, 100, 200),
  'edges-50-150': (rgb) => canny(rgb, 50, 150),
  'threshold-128': (rgb) =>
    withMats([rgb], (cv, [m], keep) => {
      const out = keep(new cv.Mat());
      cv.threshold(grey(cv, m!, keep), out, 128, 255, cv.THRESH_BINARY);
      return out;
    }),
  'threshold-otsu': (rgb) =>
    withMats([rgb], (cv, [m], keep) => {
      const out = keep(new cv.Mat());
      cv.threshold(grey(cv, m!, keep), out, 0, 255, cv.THRESH_BINARY | cv.THRESH_OTSU);
      return out;
    }),
  'erode-5-2': (rgb) => morphology(rgb, 'erode', 5, 2),
  'dilate-5-2': (rgb) => morphology(rgb, 'dilate', 5, 2),
  'erode-4-1': (rgb) => morphology(rgb, 'erode', 4, 1),
  'equalize-grey': (rgb) =>
    withMats([rgb], (cv, [m], keep) => {
      const out = keep(new cv.Mat());
      cv.equalizeHist(grey(cv, m!, keep), out);
      return out;
    }),
  'equalize-colour': (rgb) =>
    withMats([rgb], (cv, [m], keep) => {
      const ycrcb = keep(new cv.Mat());
      cv.cvtColor(m!, ycrcb, cv.COLOR_RGB2YCrCb);
      const planes = new cv.MatVector();
      try {
        cv.split(ycrcb, planes);
        const luma = keep(planes.get(0));
        const equalised = keep(new cv.Mat());
        cv.equalizeHist(luma, equalised);
        planes.set(0, equalised);
        const merged = keep(new cv.Mat());
        cv.merge(planes, merged);
        const out = keep(new cv.Mat());
        cv.cvtColor(merged, out, cv.COLOR_YCrCb2RGB);
        return out;
      } finally {
        planes.delete();
      }
    }),
  normalize: (rgb) =>
    withMats([rgb], (cv, [m], keep) => {
      const out = keep(new cv.Mat());
      cv.normalize(m!, out, 0, 255, cv.NORM_MINMAX);
      return out;
    }),
};

/** Otsu's level as cv.threshold chooses it on the grey image. */
export async function otsuLevel(rgb: RawImage): Promise<number> {
  let level = 0;
  await withMats([rgb], (cv, [m], keep) => {
    const out = keep(new cv.Mat());
    level = cv.threshold(grey(cv, m!, keep), out, 0, 255, cv.THRESH_BINARY | cv.THRESH_OTSU);
    return out;
  });
  return level;
}

function canny(rgb: RawImage, low: number, high: number): Promise<RawImage> {
  return withMats([rgb], (cv, [m], keep) => {
    const out = keep(new cv.Mat());
    cv.Canny(grey(cv, m!, keep), out, low, high);
    return out;
  });
}

function morphology(rgb: RawImage, which: 'erode' | 'dilate', size: number, iterations: number): Promise<RawImage> {
  return withMats([rgb], (cv, [m], keep) => {
    const kernel = keep(cv.Mat.ones(size, size, cv.CV_8U));
    const out = keep(new cv.Mat());
    const anchor = new cv.Point(-1, -1);
    cv[which](m!, out, kernel, anchor, iterations, cv.BORDER_CONSTANT, cv.morphologyDefaultBorderValue());
    return out;
  });
}

/**
 * findContours(RETR_EXTERNAL, CHAIN_APPROX_NONE) of a binary map, drawn 1 px green over an RGB canvas
 * with drawContours: the reference for the `contours` operation. Also returns the contour count.
 */
export async function outerContoursDrawn(binary: RawImage, canvas: RawImage): Promise<{ drawn: RawImage; count: number }> {
  let count = 0;
  const drawn = await withMats([binary, canvas], (cv, [map, base], keep) => {
    const found = new cv.MatVector();
    const hierarchy = keep(new cv.Mat());
    try {
      cv.findContours(map!, found, hierarchy, cv.RETR_EXTERNAL, cv.CHAIN_APPROX_NONE);
      count = found.size();
      const out = keep(base!.clone());
      cv.drawContours(out, found, -1, new cv.Scalar(0, 255, 0, 255), 1);
      return out;
    } finally {
      found.delete();
    }
  });
  return { drawn, count };
}
