import type { Annotations } from './operation.js';
import { extractRect } from './pixel-move.js';
import { parsePipeline, PipelineError, type Step } from './pipeline.js';
import { pixelMoveOf } from './planner.js';
import type { RawImage, Rect } from './raw-image.js';
import type { TileResult, TileTask } from './tile-task.js';

function parseSteps(steps: TileTask['steps']): Step[] {
  return steps.length === 0 ? [] : parsePipeline(steps);
}

function statisticsOf(step: Step) {
  if (!step.op.statistics) throw new PipelineError(`${step.op.name} is not a statistics operation`);
  return step.op.statistics;
}

/**
 * Runs one task of a stage (worker side): the stage's steps on the tile, keeping track of where the
 * tile lies as geometric steps move it, then cuts out the requested core. Depends on the task alone.
 */
export async function executeTileTask(task: TileTask): Promise<TileResult> {
  const { tile, source } = task;
  if (tile.width !== source.width || tile.height !== source.height) {
    throw new Error(
      `tile of ${tile.width}x${tile.height} pixels does not match its source rectangle ${source.width}x${source.height}`,
    );
  }
  const steps = parseSteps(task.steps);
  const annotations: Annotations = {};
  let image: RawImage = tile;
  let region: Rect = source;
  let size = task.imageSize;
  for (const [index, step] of steps.entries()) {
    const move = pixelMoveOf(step);
    if (index === 0 && task.histogram) {
      image = statisticsOf(step).applyWithHistogram(image, step.params, task.histogram);
    } else if (move && task.core) {
      image = await move.applyToTile(image, region, size);
      region = move.forward(region, size);
      size = move.outputSize(size);
    } else {
      image = await step.op.apply(image, step.params, annotations);
    }
  }
  const { core: wanted } = task;
  const core = wanted ? extractRect(image, { ...wanted, x: wanted.x - region.x, y: wanted.y - region.y }) : image;
  const result: TileResult = { annotations };
  if (task.returnCore) result.core = core;
  if (task.histogramFor) {
    const [step] = parsePipeline([task.histogramFor]);
    result.histogram = statisticsOf(step).histogram(core, step.params);
  }
  return result;
}
