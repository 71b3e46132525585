import type { Route } from '../types.js';

export const routes: Route[] = [];
export const extensions: string[] = [];
