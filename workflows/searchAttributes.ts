/**
 * Flywheel's custom search attributes, declared once: typed keys for workflows and clients, and the list `flywheel up`
 * registers.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

// Every Flywheel attribute is an exact-match keyword (model, dataset version, stage, pipeline names).
const keyword = (name: string) => defineSearchAttributeKey(name, SearchAttributeType.KEYWORD);

export const MODEL_KEY = keyword('FlywheelModel');
export const DATASET_VERSION_KEY = keyword('FlywheelDatasetVersion');
export const STAGE_KEY = keyword('FlywheelStage');
export const PIPELINE_KEY = keyword('FlywheelPipeline');

/** Every key by name, with its type as the Temporal CLI and operator API spell it: what `flywheel up` registers. */
export const SEARCH_ATTRIBUTES: Readonly<Record<string, 'Keyword'>> = Object.fromEntries(
  [MODEL_KEY, DATASET_VERSION_KEY, STAGE_KEY, PIPELINE_KEY].map((key) => [key.name, 'Keyword'] as const),
);
