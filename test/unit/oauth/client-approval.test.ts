import { describe, expect, it } from 'vitest';
import { approveCommand } from '../../../src/oauth/endpoints/browser.js';

describe("the command an unapproved client's page names", () => {
  it('is ready to paste, with `--` before an id that begins with "-" (or commander reads it as an option)', () => {
    expect(approveCommand('Rd9vBXA2VT3A8Rsu8ObNXy')).toBe('gatehouse clients approve Rd9vBXA2VT3A8Rsu8ObNXy');
    expect(approveCommand('-Rd9vBXA2VT3A8Rsu8ObNX')).toBe(
      'gatehouse clients approve -- -Rd9vBXA2VT3A8Rsu8ObNX',
    );
    expect(approveCommand('_underscore')).toBe('gatehouse clients approve _underscore');
  });
});
