/**
 * The retail demand example's data: the product's own generator (`flywheel demo` writes the same file), for scripts,
 * tests and benchmarks.
 */
export { DEFAULT_DEMAND, generateDemand, type DemandOptions } from '../../cli/demoData';
