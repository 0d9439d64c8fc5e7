/** Every workflow the main worker runs. */
export { pipelineWorkflow } from './pipeline';
export { monitorWorkflow } from './monitor';
export { datasetWorkflow } from './dataset';
export { sweepWorkflow } from './sweep';
export { reproduceWorkflow } from './reproduce';
export { rolloutWorkflow, aliasWorkflow } from './release';
export { loadFeatureViewWorkflow, materializeWorkflow } from '../features/workflow';
