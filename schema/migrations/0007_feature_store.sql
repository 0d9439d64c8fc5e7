CREATE TABLE "feature_views" (
	"name" text NOT NULL,
	"version" integer NOT NULL,
	"definition" jsonb NOT NULL,
	"hash" text NOT NULL,
	"offline_table" text NOT NULL,
	"loaded_from" text,
	"loaded_at" timestamp with time zone,
	"row_count" integer,
	"materialized_until" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "feature_views_name_version_pk" PRIMARY KEY("name","version")
);
--> statement-breakpoint
CREATE TABLE "online_features" (
	"view" text NOT NULL,
	"entity_key" text NOT NULL,
	"values" jsonb NOT NULL,
	"event_ts" timestamp with time zone NOT NULL,
	"created_ts" timestamp with time zone,
	"written_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "online_features_view_entity_key_pk" PRIMARY KEY("view","entity_key")
);
--> statement-breakpoint
CREATE UNIQUE INDEX "feature_views_hash" ON "feature_views" USING btree ("name","hash");--> statement-breakpoint
CREATE INDEX "online_features_view_event" ON "online_features" USING btree ("view","event_ts");