/** Typed keys of Flywheel's custom search attributes, shared by workflows and clients. */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const MODEL_KEY = defineSearchAttributeKey('FlywheelModel', SearchAttributeType.KEYWORD);
export const DATASET_VERSION_KEY = defineSearchAttributeKey('FlywheelDatasetVersion', SearchAttributeType.KEYWORD);
export const STAGE_KEY = defineSearchAttributeKey('FlywheelStage', SearchAttributeType.KEYWORD);
export const PIPELINE_KEY = defineSearchAttributeKey('FlywheelPipeline', SearchAttributeType.KEYWORD);
