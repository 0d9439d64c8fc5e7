DROP INDEX "alerts_one_open";--> statement-breakpoint
CREATE UNIQUE INDEX "alerts_one_active" ON "alerts" USING btree ("monitor_workflow_id","check") WHERE status in ('open', 'acknowledged');