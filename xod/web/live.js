// The page's one WebSocket to xod: JSON-RPC calls, and collections fed by `xod.subscribe`
// (docs/protocol.md). After a drop, each collection subscribes again with `since` (the last
// revision it received in full): only the net changes come, nothing is refetched. If xod
// restarted (another instance id at /session), revisions mean nothing any more: each
// collection starts afresh. The WebSocket is signed in by the HttpOnly cookie at the upgrade.

const FRAME_OBJECTS = 500; // a frame with fewer objects is the last of its revision
const GONE = 410;

const nextFrame = new Set();
let frameRequest = 0;

/** Run `callback` at the next animation frame, with every other callback queued for it: the
 * state changes they make end in one render (Preact batches them), so the DOM is updated at
 * most once per frame, whatever the change and scroll rates. */
export function onNextFrame(callback) {
  nextFrame.add(callback);
  if (frameRequest) return;
  frameRequest = requestAnimationFrame(() => {
    frameRequest = 0;
    const callbacks = [...nextFrame];
    nextFrame.clear();
    for (const queued of callbacks) queued();
  });
}

export class RpcError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
    this.data = error.data;
  }
}

export class Collection {
  constructor(live, name, { filter = "", fields, types = null }) {
    this.live = live;
    // With `types`, the objects are also kept in one map per type (`fields` must include
    // "type"): several kinds from one subscription, so xod scans its cache once for them.
    this.views = types && Object.fromEntries(types.map((type) => [type, new Map()]));
    this.name = name;
    this.filter = filter;
    this.fields = fields;
    this.items = new Map();
    this.since = null;
    this.subscription = null;
    this.error = null;
    this.loaded = false;
    // Goes up when objects come, go or are renamed: what a sorted view re-sorts on.
    this.order = 0;
  }

  async open() {
    const filter = this.filter;
    const params = { filter, fields: this.fields };
    if (this.since !== null) params.since = this.since;
    try {
      const result = await this.live.call("xod.subscribe", params);
      if (filter !== this.filter) {
        // Typed over meanwhile: the newer filter's subscription is the one kept.
        this.live.call("xod.unsubscribe", { subscription: result.subscription }).catch(() => {});
        return;
      }
      this.subscription = result.subscription;
      this.live.bySubscription.set(result.subscription, this);
      this.error = null;
    } catch (error) {
      if (error.code === GONE) {
        this.forget();
        return this.open();
      }
      this.error = error;
      this.loaded = true;
      this.live.changed();
    }
  }

  /** The objects of one type (a collection made with `types`), as a collection's view. */
  view(type) {
    const collection = this;
    return {
      items: this.views[type],
      get loaded() {
        return collection.loaded;
      },
    };
  }

  forget() {
    this.order++;
    this.items.clear();
    for (const items of Object.values(this.views || {})) items.clear();
    this.since = null;
    this.loaded = false;
  }

  apply(params) {
    const items = this.items;
    const views = this.views;
    for (const id of params.exit || []) {
      const old = items.get(id);
      if (items.delete(id)) this.order++;
      if (views && old) views[old.type]?.delete(id);
    }
    let count = 0;
    for (const id in params.enter) {
      const object = params.enter[id];
      const old = items.get(id);
      if (old === undefined || old.name_label !== object.name_label) this.order++;
      items.set(id, object);
      if (views) {
        if (old && old.type !== object.type) views[old.type]?.delete(id);
        views[object.type]?.set(id, object);
      }
      count++;
    }
    if (count < FRAME_OBJECTS) {
      this.since = params.revision;
      this.loaded = true;
    }
    this.live.changed();
  }

  /** Another filter: xod applies it (a new subscription), the old one ends. */
  async setFilter(filter) {
    if (filter === this.filter && !this.error) return;
    const old = this.subscription;
    this.filter = filter;
    this.subscription = null;
    if (old) {
      this.live.bySubscription.delete(old);
      this.live.call("xod.unsubscribe", { subscription: old }).catch(() => {});
    }
    this.forget();
    this.live.changed();
    if (this.live.status === "live") await this.open();
  }
}

export class Live {
  constructor({ onStatus, onSignedOut }) {
    this.ws = null;
    this.nextId = 1;
    this.pending = new Map();
    this.collections = [];
    this.bySubscription = new Map();
    this.listeners = new Set();
    this.onStatus = onStatus;
    this.onSignedOut = onSignedOut;
    this.status = "connecting";
    this.instance = null;
    this.user = null;
    this.attempt = 0;
    this.stopped = true;
    this.timer = 0;
    this.notify = () => {
      for (const listener of this.listeners) listener();
    };
  }

  collection(name, options) {
    const collection = new Collection(this, name, options);
    this.collections.push(collection);
    return collection;
  }

  /** Call every listener at most once per animation frame, whatever the change rate. */
  changed() {
    onNextFrame(this.notify);
  }

  setStatus(status) {
    this.status = status;
    this.onStatus(status);
  }

  /** Connect; `session` is /session's answer when the page already has it. */
  start(session = null) {
    this.stopped = false;
    this.connect(session);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "signed out");
    this.ws = null;
  }

  async connect(session = null) {
    if (this.stopped) return;
    this.setStatus(this.instance === null ? "connecting" : "reconnecting");
    let info = session;
    try {
      info ??= await (await fetch("/session", { cache: "no-store" })).json();
    } catch {
      return this.retry();
    }
    if (!info.user) {
      this.stop();
      this.onSignedOut();
      return;
    }
    this.user = info.user;
    if (this.instance !== null && info.instance !== this.instance) {
      for (const collection of this.collections) collection.forget();
    }
    this.instance = info.instance;
    const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/api/");
    this.ws = ws;
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = () => this.closed(ws);
    ws.onopen = () => this.opened();
  }

  async opened() {
    // Everything at once (answers come in order): the VM snapshot is not held up by round trips.
    this.bySubscription.clear();
    this.setStatus("live");
    const quiet = this.call("xod.setAllNotifications", { enabled: false });
    const user = this.call("session.getUser");
    // The first collection (the big one) first: its snapshot is queued before xod works on
    // the others.
    const [first, ...others] = this.collections;
    const opened = first.open().then(() => Promise.all(others.map((c) => c.open())));
    try {
      await quiet;
      this.user = await user;
      await opened;
      this.attempt = 0;
    } catch (error) {
      if (error.code === 2) {
        this.stop();
        this.onSignedOut();
      }
    }
  }

  closed(ws) {
    if (ws !== this.ws) return;
    this.ws = null;
    for (const { reject } of this.pending.values()) reject(new RpcError({ message: "connection lost" }));
    this.pending.clear();
    this.retry();
  }

  retry() {
    if (this.stopped) return;
    this.setStatus("reconnecting");
    const delay = Math.min(5000, 200 * 2 ** this.attempt++);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  receive(data) {
    const message = JSON.parse(data);
    if (message.method === "xod.changes") {
      const collection = this.bySubscription.get(message.params.subscription);
      if (collection) collection.apply(message.params);
      return;
    }
    const call = this.pending.get(message.id);
    if (!call) return;
    this.pending.delete(message.id);
    if (message.error) call.reject(new RpcError(message.error));
    else call.resolve(message.result);
  }

  call(method, params) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new RpcError({ message: "not connected to xod" }));
    }
    const id = this.nextId++;
    const message = { jsonrpc: "2.0", id, method };
    if (params !== undefined) message.params = params;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      ws.send(JSON.stringify(message));
    });
  }
}
