// `constant`: the next interval looks like the last one. The baseline every other
// predictor must beat, and the right choice when intervals are long against load changes.
// It keeps leading zeros: the last value is the forecast, whatever it is.
import { rejectUnknownParams } from './params.js';
import { SeriesPredictor } from './series-predictor.js';

export class ConstantPredictor extends SeriesPredictor {
  readonly id = 'constant';

  constructor() {
    super(false);
  }

  protected accept(): void {}

  protected forecast(): number {
    return this.last!;
  }
}

/** Builds `constant`; it takes no parameters. */
export function createConstant(params: Record<string, unknown> = {}): ConstantPredictor {
  rejectUnknownParams('constant', params, []);
  return new ConstantPredictor();
}
