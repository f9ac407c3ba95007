import { mongodbCapabilities } from './mongodb/capabilities';
import { mysqlCapabilities } from './mysql/capabilities';
import type { EngineCapabilities, EngineName } from './names';

export type { EngineCapabilities, EngineServerKey } from './names';
export { ENGINE_SERVER_KEYS } from './names';
import { postgresqlCapabilities } from './postgresql/capabilities';
import { redisCapabilities } from './redis/capabilities';

export const CAPABILITIES = {
  postgresql: postgresqlCapabilities,
  mysql: mysqlCapabilities,
  redis: redisCapabilities,
  mongodb: mongodbCapabilities,
} satisfies Record<EngineName, EngineCapabilities>;

export function capabilitiesOf(name: EngineName): EngineCapabilities {
  return CAPABILITIES[name];
}

/** Every engine's redaction, for program output whose engine is not known at the call. */
export function redactProgramOutput(text: string): string {
  let out = text;
  for (const caps of Object.values(CAPABILITIES) as EngineCapabilities[]) {
    for (const r of caps.redact) out = out.replace(r.pattern, r.replacement);
  }
  return out;
}
