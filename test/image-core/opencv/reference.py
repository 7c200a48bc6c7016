"""OpenCV reference results for the parity test (run with /usr/bin/python3, which has cv2).

Usage: reference.py OUT_DIR IMAGE.png...
For every input writes OUT_DIR/<stem>-<case>.png for each case below, and prints one JSON object
{"<stem>": {"otsu": level}} so the test can compare Otsu's chosen level as well as the pixels.
"""
import json
import os
import sys

import cv2
import numpy as np


def cases(bgr):
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    kernel = np.ones((5, 5), np.uint8)
    otsu_level, otsu = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    ycrcb = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
    ycrcb[:, :, 0] = cv2.equalizeHist(ycrcb[:, :, 0])
    return otsu_level, {
        'grayscale': grey,
        'edges-100-200': cv2.Canny(grey, 100, 200),
        'edges-50-150': cv2.Canny(grey, 50, 150),
        'threshold-128': cv2.threshold(grey, 128, 255, cv2.THRESH_BINARY)[1],
        'threshold-otsu': otsu,
        'erode-5-2': cv2.erode(bgr, kernel, iterations=2),
        'dilate-5-2': cv2.dilate(bgr, kernel, iterations=2),
        'erode-4-1': cv2.erode(bgr, np.ones((4, 4), np.uint8)),
        'equalize-grey': cv2.equalizeHist(grey),
        'equalize-colour': cv2.cvtColor(ycrcb, cv2.COLOR_YCrCb2BGR),
        'normalize': cv2.normalize(bgr, None, 0, 255, cv2.NORM_MINMAX),
    }


def main():
    out_dir, inputs = sys.argv[1], sys.argv[2:]
    levels = {}
    for path in inputs:
        stem = os.path.splitext(os.path.basename(path))[0]
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            sys.exit(f'cannot read {path}')
        otsu_level, results = cases(bgr)
        levels[stem] = {'otsu': otsu_level}
        for name, image in results.items():
            cv2.imwrite(os.path.join(out_dir, f'{stem}-{name}.png'), image)
    print(json.dumps(levels))


main()
