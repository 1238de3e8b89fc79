// Keeps an EventSubscriber connected to the publishers discovery lists: connect when a
// record with an eventAddress appears (or its address changes), disconnect when it goes.
// It only manages connections; what a consumer does on join (load a dump) or leave (drop
// that publisher's state) belongs in the hooks.
import {
  createLogger,
  type Discovery,
  type DiscoveryEvent,
  type DiscoveryFilter,
  type InstanceRecord,
  type Watch,
} from '@armature/runtime';
import type { EventSubscriber } from './types.js';

const log = createLogger('event-plane');

const describe = (err: unknown): string =>
  err instanceof Error
    ? [err.message, err.cause instanceof Error ? err.cause.message : undefined].filter(Boolean).join(': ')
    : String(err);

export interface FollowHooks {
  /**
   * Called for every discovery event matching the filter, records without an eventAddress
   * included, before the connection is handled: what a consumer that also tracks
   * membership needs, so it follows discovery once.
   */
  onRecord?(event: DiscoveryEvent): void;
  /** Called after connecting to a record's eventAddress (also after an address change). */
  onJoin?(record: InstanceRecord): void;
  /** Called after disconnecting from a record (removed, address changed, or the follow closed). */
  onLeave?(record: InstanceRecord): void;
  /** Called when a followed record changes but keeps its eventAddress (still the same publisher). */
  onUpdate?(record: InstanceRecord): void;
}

/**
 * Connects `subscriber` to the eventAddress of every record matching `filter`, and
 * disconnects when a record is removed. An address change counts as leave then join, since
 * it is a new publisher whose sequence numbers start again. Records without an
 * eventAddress are ignored. Closing the returned watch disconnects everything it connected
 * (calling onLeave for each). Hook exceptions and bad addresses are logged, never thrown.
 */
export function followPublishers(
  discovery: Discovery,
  filter: DiscoveryFilter,
  subscriber: EventSubscriber,
  hooks: FollowHooks = {},
): Watch {
  /** instanceId -> the record we are connected for. */
  const followed = new Map<string, InstanceRecord>();
  /** address -> how many followed records use it (two records may share a publisher). */
  const users = new Map<string, number>();
  let closed = false;

  const call = (hook: ((record: InstanceRecord) => void) | undefined, record: InstanceRecord): void => {
    try {
      hook?.(record);
    } catch (err) {
      log.warn('event follow hook failed', { instanceId: record.instanceId, error: describe(err) });
    }
  };

  const join = (record: InstanceRecord): void => {
    const address = record.eventAddress;
    if (!address) return;
    const count = users.get(address) ?? 0;
    if (count === 0) {
      try {
        subscriber.connect(address);
      } catch (err) {
        log.warn('cannot follow event publisher', { instanceId: record.instanceId, address, error: describe(err) });
        return;
      }
    }
    users.set(address, count + 1);
    followed.set(record.instanceId, record);
    call(hooks.onJoin, record);
  };

  const leave = (instanceId: string): void => {
    const record = followed.get(instanceId);
    if (!record?.eventAddress) return;
    followed.delete(instanceId);
    const address = record.eventAddress;
    const count = (users.get(address) ?? 1) - 1;
    if (count > 0) users.set(address, count);
    else {
      users.delete(address);
      subscriber.disconnect(address);
    }
    call(hooks.onLeave, record);
  };

  const watch = discovery.watch(filter, (event) => {
    if (closed) return;
    const { record } = event;
    if (hooks.onRecord) {
      try {
        hooks.onRecord(event);
      } catch (err) {
        log.warn('event follow hook failed', { instanceId: record.instanceId, error: describe(err) });
      }
    }
    switch (event.type) {
      case 'added':
        leave(record.instanceId);
        join(record);
        break;
      case 'updated': {
        const previous = followed.get(record.instanceId);
        if (previous && previous.eventAddress === record.eventAddress) {
          followed.set(record.instanceId, record);
          call(hooks.onUpdate, record);
        } else {
          leave(record.instanceId);
          join(record);
        }
        break;
      }
      case 'removed':
        leave(record.instanceId);
        break;
    }
  });

  return {
    close: () => {
      if (closed) return;
      closed = true;
      watch.close();
      for (const instanceId of [...followed.keys()]) leave(instanceId);
    },
  };
}
