CREATE TABLE "api_tokens" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"scope" text NOT NULL,
	"hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_tokens_hash_unique" UNIQUE("hash")
);
--> statement-breakpoint
CREATE TABLE "model_approvals" (
	"workflow_id" text PRIMARY KEY NOT NULL,
	"model_name" text NOT NULL,
	"version" integer NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"actor" text,
	"comment" text,
	"requested_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "registry_webhooks" (
	"id" serial PRIMARY KEY NOT NULL,
	"url" text NOT NULL,
	"events" jsonb NOT NULL,
	"model_name" text,
	"secret" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "shadow_predictions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"request_id" text NOT NULL,
	"model_name" text NOT NULL,
	"base_version" integer NOT NULL,
	"shadow_version" integer NOT NULL,
	"base_prediction" double precision NOT NULL,
	"shadow_prediction" double precision,
	"error" text,
	"latency_ms" real NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "traffic_routes" (
	"model_name" text PRIMARY KEY NOT NULL,
	"mode" text NOT NULL,
	"base_version" integer NOT NULL,
	"candidate_version" integer NOT NULL,
	"weight" double precision NOT NULL,
	"workflow_id" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "model_versions" ADD COLUMN "status" text DEFAULT 'active' NOT NULL;--> statement-breakpoint
ALTER TABLE "model_versions" ADD COLUMN "tags" jsonb DEFAULT '{}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "model_versions" ADD COLUMN "evaluation" jsonb;--> statement-breakpoint
ALTER TABLE "request_errors" ADD COLUMN "model_version" integer;--> statement-breakpoint
CREATE INDEX "model_approvals_version" ON "model_approvals" USING btree ("model_name","version");--> statement-breakpoint
CREATE INDEX "shadow_predictions_model_time" ON "shadow_predictions" USING btree ("model_name","created_at");