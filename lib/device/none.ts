import type { DeviceType } from './types.js';

/**
 * none: removes a device of the same name inherited from a profile (profile/expand.ts drops it
 * from the expanded set), so it never reaches a start or a live change.
 */
export const noneDevice: DeviceType = {
  key: 'none',
  types: ['none'],
  validate: () => {},
};
