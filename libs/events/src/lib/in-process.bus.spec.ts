import { CloudEvent } from './cloud-event';
import { describeEventBusContract } from './event-bus.contract';
import { InProcessEventBus } from './in-process.bus';

describeEventBusContract(
  'in-process',
  { retainsEvents: false, redeliversAfterHandlerFailure: false, acceptsForeignMessages: false },
  async () => {
    const failures: { error: unknown; event: CloudEvent }[] = [];
    return { bus: new InProcessEventBus((error, event) => failures.push({ error, event })), reportedFailures: () => failures };
  },
);
