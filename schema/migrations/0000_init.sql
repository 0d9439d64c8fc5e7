CREATE TABLE "dataset_versions" (
	"id" text PRIMARY KEY NOT NULL,
	"dataset_name" text NOT NULL,
	"content_hash" text NOT NULL,
	"object_key" text NOT NULL,
	"source_uri" text NOT NULL,
	"format" text DEFAULT 'csv' NOT NULL,
	"row_count" integer NOT NULL,
	"byte_size" bigint NOT NULL,
	"columns" jsonb NOT NULL,
	"profile" jsonb NOT NULL,
	"created_by_workflow_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "datasets" (
	"name" text PRIMARY KEY NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "validation_reports" (
	"id" text PRIMARY KEY NOT NULL,
	"dataset_version_id" text NOT NULL,
	"workflow_id" text NOT NULL,
	"passed" boolean NOT NULL,
	"error_count" integer NOT NULL,
	"warning_count" integer NOT NULL,
	"report_key" text NOT NULL,
	"summary" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "run_metrics" (
	"run_id" text NOT NULL,
	"key" text NOT NULL,
	"step" integer NOT NULL,
	"value" double precision NOT NULL,
	"logged_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "run_metrics_run_id_key_step_pk" PRIMARY KEY("run_id","key","step")
);
--> statement-breakpoint
CREATE TABLE "runs" (
	"id" text PRIMARY KEY NOT NULL,
	"workflow_id" text NOT NULL,
	"pipeline_name" text NOT NULL,
	"model_name" text NOT NULL,
	"dataset_version_id" text NOT NULL,
	"status" text NOT NULL,
	"task" text NOT NULL,
	"params" jsonb NOT NULL,
	"seed" integer NOT NULL,
	"backend" text,
	"task_queue" text,
	"code_version" text,
	"metrics" jsonb,
	"artifact_key" text,
	"error" text,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ended_at" timestamp with time zone,
	CONSTRAINT "runs_workflow_id_unique" UNIQUE("workflow_id")
);
--> statement-breakpoint
CREATE TABLE "alias_events" (
	"id" serial PRIMARY KEY NOT NULL,
	"model_name" text NOT NULL,
	"alias" text NOT NULL,
	"from_version" integer,
	"to_version" integer NOT NULL,
	"actor" text NOT NULL,
	"reason" text NOT NULL,
	"workflow_id" text,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "model_aliases" (
	"model_name" text NOT NULL,
	"alias" text NOT NULL,
	"version" integer NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "model_aliases_model_name_alias_pk" PRIMARY KEY("model_name","alias")
);
--> statement-breakpoint
CREATE TABLE "model_versions" (
	"model_name" text NOT NULL,
	"version" integer NOT NULL,
	"run_id" text NOT NULL,
	"dataset_version_id" text NOT NULL,
	"workflow_id" text NOT NULL,
	"code_version" text,
	"params" jsonb NOT NULL,
	"metrics" jsonb NOT NULL,
	"artifact_key" text NOT NULL,
	"prediction_reference_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "model_versions_model_name_version_pk" PRIMARY KEY("model_name","version"),
	CONSTRAINT "model_versions_run_id_unique" UNIQUE("run_id"),
	CONSTRAINT "model_versions_workflow_id_unique" UNIQUE("workflow_id")
);
--> statement-breakpoint
CREATE TABLE "registered_models" (
	"name" text PRIMARY KEY NOT NULL,
	"task" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "deployments" (
	"id" text PRIMARY KEY NOT NULL,
	"model_name" text NOT NULL,
	"alias" text NOT NULL,
	"version" integer NOT NULL,
	"endpoint" text NOT NULL,
	"pipeline_name" text NOT NULL,
	"workflow_id" text NOT NULL,
	"monitor_workflow_id" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "predictions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"request_id" text NOT NULL,
	"model_name" text NOT NULL,
	"model_version" integer NOT NULL,
	"inputs" jsonb NOT NULL,
	"prediction" double precision NOT NULL,
	"latency_ms" real NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "alerts" (
	"id" serial PRIMARY KEY NOT NULL,
	"monitor_workflow_id" text NOT NULL,
	"model_name" text NOT NULL,
	"check" text NOT NULL,
	"severity" text NOT NULL,
	"status" text NOT NULL,
	"message" text NOT NULL,
	"details" jsonb NOT NULL,
	"retrain_workflow_id" text,
	"opened_at" timestamp with time zone DEFAULT now() NOT NULL,
	"resolved_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "monitor_checks" (
	"id" text PRIMARY KEY NOT NULL,
	"monitor_workflow_id" text NOT NULL,
	"model_name" text NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"window_end" timestamp with time zone NOT NULL,
	"report" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "pipelines" (
	"name" text PRIMARY KEY NOT NULL,
	"config" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "dataset_versions" ADD CONSTRAINT "dataset_versions_dataset_name_datasets_name_fk" FOREIGN KEY ("dataset_name") REFERENCES "public"."datasets"("name") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "validation_reports" ADD CONSTRAINT "validation_reports_dataset_version_id_dataset_versions_id_fk" FOREIGN KEY ("dataset_version_id") REFERENCES "public"."dataset_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_metrics" ADD CONSTRAINT "run_metrics_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runs" ADD CONSTRAINT "runs_dataset_version_id_dataset_versions_id_fk" FOREIGN KEY ("dataset_version_id") REFERENCES "public"."dataset_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "model_aliases" ADD CONSTRAINT "model_aliases_model_name_registered_models_name_fk" FOREIGN KEY ("model_name") REFERENCES "public"."registered_models"("name") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "model_versions" ADD CONSTRAINT "model_versions_model_name_registered_models_name_fk" FOREIGN KEY ("model_name") REFERENCES "public"."registered_models"("name") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "model_versions" ADD CONSTRAINT "model_versions_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "model_versions" ADD CONSTRAINT "model_versions_dataset_version_id_dataset_versions_id_fk" FOREIGN KEY ("dataset_version_id") REFERENCES "public"."dataset_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "dataset_versions_name_hash" ON "dataset_versions" USING btree ("dataset_name","content_hash");--> statement-breakpoint
CREATE INDEX "validation_reports_version" ON "validation_reports" USING btree ("dataset_version_id");--> statement-breakpoint
CREATE INDEX "runs_model" ON "runs" USING btree ("model_name");--> statement-breakpoint
CREATE INDEX "alias_events_model" ON "alias_events" USING btree ("model_name","alias");--> statement-breakpoint
CREATE UNIQUE INDEX "alias_events_workflow" ON "alias_events" USING btree ("workflow_id","model_name","alias");--> statement-breakpoint
CREATE INDEX "predictions_model_time" ON "predictions" USING btree ("model_name","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "alerts_one_open" ON "alerts" USING btree ("monitor_workflow_id","check") WHERE status = 'open';--> statement-breakpoint
CREATE INDEX "monitor_checks_model" ON "monitor_checks" USING btree ("model_name","window_end");