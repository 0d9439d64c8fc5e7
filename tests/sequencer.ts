/**
 * Test file order: Vitest's own, except that the secret scan runs last, once every other file's workflows have written
 * their histories.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** The file that must run after all others (it scans what they left behind). */
export const RUNS_LAST = /[\\/]tests[\\/]integration[\\/]zz-secrets\.test\.ts$/;

export class SecretScanLastSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return [
      ...sorted.filter((file) => !RUNS_LAST.test(file.moduleId)),
      ...sorted.filter((file) => RUNS_LAST.test(file.moduleId)),
    ];
  }
}
