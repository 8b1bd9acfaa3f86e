import { describe, expect, it } from 'vitest';
import { PauseNotices } from '../../activities/pause-notices';

describe('PauseNotices: a pause reaches the running batches of that workflow in this process', () => {
  it('tells every listener of the paused workflow, no other, and none after it stopped listening', () => {
    const notices = new PauseNotices();
    const heard: string[] = [];
    const stopA1 = notices.listen('wf-a', () => heard.push('a1'));
    notices.listen('wf-a', () => heard.push('a2'));
    notices.listen('wf-b', () => heard.push('b'));
    notices.paused('wf-a');
    expect(heard).toEqual(['a1', 'a2']);
    stopA1();
    stopA1(); // twice is harmless
    notices.paused('wf-a');
    notices.paused('wf-unknown');
    expect(heard).toEqual(['a1', 'a2', 'a2']);
  });
});
