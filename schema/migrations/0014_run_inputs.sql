CREATE TABLE "run_dataset_inputs" (
	"run_id" text NOT NULL,
	"name" text NOT NULL,
	"digest" text NOT NULL,
	"source_type" text NOT NULL,
	"source" text NOT NULL,
	"schema" text,
	"profile" text,
	"tags" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"logged_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "run_dataset_inputs_run_id_name_digest_pk" PRIMARY KEY("run_id","name","digest")
);
--> statement-breakpoint
CREATE TABLE "run_model_inputs" (
	"run_id" text NOT NULL,
	"model_id" text NOT NULL,
	"logged_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "run_model_inputs_run_id_model_id_pk" PRIMARY KEY("run_id","model_id")
);
--> statement-breakpoint
ALTER TABLE "run_dataset_inputs" ADD CONSTRAINT "run_dataset_inputs_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;
--> statement-breakpoint
ALTER TABLE "run_model_inputs" ADD CONSTRAINT "run_model_inputs_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;
