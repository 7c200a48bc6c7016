/** The one protocol module: API responses, master<->worker messages, and the error model. */
export * from './api.js';
export * from './errors.js';
export * from './tasks.js';
export * from './newcomer.js';
export * from './batch.js';
export * from './presets.js';
export * from './uploads.js';
