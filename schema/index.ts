/** All tables, for drizzle's query builder and drizzle-kit. */
export * from './datasets';
export * from './runs';
export * from './models';
export * from './deployments';
export * from './monitors';
export * from './features';
export * from './servingReplicas';
