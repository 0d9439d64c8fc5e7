ALTER TABLE "runs" DROP CONSTRAINT "runs_workflow_id_unique";--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "experiment" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "tags" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "sweep_id" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "trial" integer;--> statement-breakpoint
CREATE INDEX "runs_workflow" ON "runs" USING btree ("workflow_id");--> statement-breakpoint
CREATE INDEX "runs_sweep" ON "runs" USING btree ("sweep_id");