// The predictors' public surface: the interface, the registry and each implementation.
export * from './predictor.js';
export { SeriesPredictor } from './series-predictor.js';
export * from './constant.js';
export * from './moving-average.js';
export * from './kalman.js';
export * from './arima.js';
export * from './holt-winters.js';
