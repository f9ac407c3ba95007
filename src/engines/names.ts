/** The engines SPEC section 1 names. Kept apart from everything else so any layer can import it. */
export const ENGINE_NAMES = ['postgresql', 'mysql', 'redis', 'mongodb'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];
