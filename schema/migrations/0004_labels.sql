CREATE TABLE "labels" (
	"request_id" text PRIMARY KEY NOT NULL,
	"model_name" text NOT NULL,
	"label" text NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "labels_model_time" ON "labels" USING btree ("model_name","received_at");