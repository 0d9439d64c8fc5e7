CREATE TABLE "dataset_aliases" (
	"dataset_name" text NOT NULL,
	"alias" text NOT NULL,
	"version_id" text NOT NULL,
	"updated_by" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "dataset_aliases_dataset_name_alias_pk" PRIMARY KEY("dataset_name","alias")
);
--> statement-breakpoint
ALTER TABLE "datasets" ADD COLUMN "inferred_contract" jsonb;--> statement-breakpoint
ALTER TABLE "datasets" ADD COLUMN "inferred_from" text;--> statement-breakpoint
ALTER TABLE "dataset_aliases" ADD CONSTRAINT "dataset_aliases_dataset_name_datasets_name_fk" FOREIGN KEY ("dataset_name") REFERENCES "public"."datasets"("name") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dataset_aliases" ADD CONSTRAINT "dataset_aliases_version_id_dataset_versions_id_fk" FOREIGN KEY ("version_id") REFERENCES "public"."dataset_versions"("id") ON DELETE no action ON UPDATE no action;