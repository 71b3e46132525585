/**
 * How long image work (build, pull, import, publish) reports its phases. Apart from build.ts
 * because the image sources build.ts runs report through it too.
 */
export type Progress = (phase: string, detail?: string) => void;
