// The service a compute node offers. Three nodes run this same class at different speeds.
import { currentCall, remote } from '@easyremote/node';

export interface TrainResult {
  node: string;
  epochs: number;
  loss: number;
}

export class Trainer {
  constructor(
    private readonly nodeName: string,
    /** Simulated milliseconds per epoch on this machine. */
    private readonly msPerEpoch: number,
  ) {}

  @remote({ idempotent: true, timeout: 30_000, description: 'Fits a toy model; simulated work' })
  async train_model(data: { samples: Float32Array; epochs: number }): Promise<TrainResult> {
    const { signal } = currentCall();
    let loss = 1;
    for (let epoch = 1; epoch <= data.epochs; epoch++) {
      await new Promise((resolve) => setTimeout(resolve, this.msPerEpoch));
      if (signal.aborted) throw signal.reason;
      loss *= 0.5 + 0.1 * Math.abs(Math.sin(data.samples[epoch % data.samples.length]!));
      currentCall().progress(epoch / data.epochs);
    }
    return { node: this.nodeName, epochs: data.epochs, loss };
  }
}
