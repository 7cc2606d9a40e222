export type { StaticCapabilities, TelemetryProvider, TelemetrySample } from './provider.js';
export {
  DEFAULT_GPU_REFRESH_MS,
  SystemTelemetryProvider,
  type GraphicsControllerInfo,
  type SystemInfoSource,
  type SystemTelemetryProviderOptions,
} from './system.js';
export { StaticTelemetryProvider } from './static.js';
export {
  DEFAULT_SAMPLE_INTERVAL_MS,
  TelemetrySampler,
  type TelemetrySamplerOptions,
  type TelemetrySamplerStats,
} from './sampler.js';
