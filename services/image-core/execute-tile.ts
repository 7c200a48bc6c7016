import { extractRect } from './pixel-move.js';
import { parsePipeline, PipelineError, runSteps } from './pipeline.js';
import type { TileResult, TileTask } from './tile-task.js';

/**
 * Runs one task of a stage (worker side): the stage's steps on the tile through the same step loop as
 * whole images (runSteps, which tracks where the tile lies as pixel moves carry it), then cuts out the
 * requested core. Depends on the task alone; `signal` aborts it between steps.
 */
export async function executeTileTask(task: TileTask, signal?: AbortSignal): Promise<TileResult> {
  const { tile, source } = task;
  if (tile.width !== source.width || tile.height !== source.height) {
    throw new Error(
      `tile of ${tile.width}x${tile.height} pixels does not match its source rectangle ${source.width}x${source.height}`,
    );
  }
  const steps = parsePipeline(task.steps);
  const { image, annotations, place } = await runSteps(tile, steps, {
    signal,
    ...(task.core ? { tile: { region: source, imageSize: task.imageSize } } : {}),
    ...(task.histogram ? { histogram: task.histogram } : {}),
  });
  const { core: wanted } = task;
  const { region } = place;
  const core = wanted ? extractRect(image, { ...wanted, x: wanted.x - region.x, y: wanted.y - region.y }) : image;
  const result: TileResult = { annotations };
  if (task.returnCore) result.core = core;
  if (task.histogramFor) {
    const [{ op, params }] = parsePipeline([task.histogramFor]);
    if (op.tiling.kind !== 'statistics') throw new PipelineError(`${op.name} is not a statistics operation`);
    result.histogram = op.tiling.histogram(core, params);
  }
  return result;
}
