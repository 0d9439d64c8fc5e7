/**
 * What the server's routes are given: the database, the object store, the resolved config and a lazy Temporal client.
 */
import type { Client } from '@temporalio/client';
import type { Db } from '../storage/db';
import type { ObjectStore } from '../storage/objectStore';
import type { FlywheelConfig } from '../config/env';

export interface ServerDeps {
  db: Db;
  objects: ObjectStore;
  config: Readonly<FlywheelConfig>;
  temporal(): Promise<Client>;
}
