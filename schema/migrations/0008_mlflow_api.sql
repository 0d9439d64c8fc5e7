CREATE TABLE "experiments" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"artifact_location" text,
	"tags" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"deleted_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "experiments_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "logged_models" (
	"id" text PRIMARY KEY NOT NULL,
	"experiment_id" integer NOT NULL,
	"name" text NOT NULL,
	"source_run_id" text,
	"status" text DEFAULT 'PENDING' NOT NULL,
	"model_type" text,
	"params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"tags" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deleted_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "model_versions" DROP CONSTRAINT "model_versions_run_id_unique";--> statement-breakpoint
ALTER TABLE "runs" ALTER COLUMN "workflow_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ALTER COLUMN "pipeline_name" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ALTER COLUMN "model_name" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ALTER COLUMN "dataset_version_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ALTER COLUMN "task" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ALTER COLUMN "params" SET DEFAULT '{}'::jsonb;--> statement-breakpoint
ALTER TABLE "runs" ALTER COLUMN "seed" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "model_versions" ALTER COLUMN "run_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "model_versions" ALTER COLUMN "dataset_version_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "model_versions" ALTER COLUMN "workflow_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "registered_models" ALTER COLUMN "task" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "name" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "user_id" text;--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "deleted_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "model_versions" ADD COLUMN "source" text;--> statement-breakpoint
ALTER TABLE "model_versions" ADD COLUMN "description" text;--> statement-breakpoint
ALTER TABLE "model_versions" ADD COLUMN "user_id" text;--> statement-breakpoint
ALTER TABLE "model_versions" ADD COLUMN "updated_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "registered_models" ADD COLUMN "description" text;--> statement-breakpoint
ALTER TABLE "registered_models" ADD COLUMN "tags" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "registered_models" ADD COLUMN "updated_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "logged_models" ADD CONSTRAINT "logged_models_experiment_id_experiments_id_fk" FOREIGN KEY ("experiment_id") REFERENCES "public"."experiments"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "logged_models" ADD CONSTRAINT "logged_models_source_run_id_runs_id_fk" FOREIGN KEY ("source_run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "logged_models_experiment" ON "logged_models" USING btree ("experiment_id");--> statement-breakpoint
CREATE INDEX "logged_models_run" ON "logged_models" USING btree ("source_run_id");--> statement-breakpoint
CREATE INDEX "runs_experiment_started" ON "runs" USING btree ("experiment","started_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "runs_started" ON "runs" USING btree ("started_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "runs_params" ON "runs" USING gin ("params" jsonb_path_ops);--> statement-breakpoint
CREATE INDEX "runs_tags" ON "runs" USING gin ("tags" jsonb_path_ops);--> statement-breakpoint
CREATE INDEX "model_versions_run" ON "model_versions" USING btree ("run_id");--> statement-breakpoint
INSERT INTO "experiments" ("id", "name", "artifact_location") VALUES (0, 'Default', 'mlflow-artifacts:/0') ON CONFLICT DO NOTHING;--> statement-breakpoint
INSERT INTO "experiments" ("name") SELECT DISTINCT "experiment" FROM "runs" ON CONFLICT DO NOTHING;--> statement-breakpoint
UPDATE "experiments" SET "artifact_location" = 'mlflow-artifacts:/' || "id" WHERE "artifact_location" IS NULL;
