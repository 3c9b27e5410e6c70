// The helper that drives kafkajs for kafkapy's compatibility suite: one call a JSON line on
// stdin, one answer a JSON line on stdout (the protocol is described in adapters/bridge.py).
//
//     node helper.js BOOTSTRAP

'use strict'

const readline = require('readline')
const {
  Kafka, logLevel, CompressionTypes, Partitioners, ConfigResourceTypes, AssignerProtocol,
  AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes,
} = require('kafkajs')

const TIMEOUT_MS = 30000
const bootstrap = process.argv[2]
const kafka = new Kafka({
  clientId: 'kafkapy-compat',
  brokers: [bootstrap],
  connectionTimeout: TIMEOUT_MS,
  requestTimeout: TIMEOUT_MS,
  // Enough retries to ride out a restarting broker's coordinators loading, as the Java client would.
  retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 2000 },
  // Whatever kafkajs logs goes to stderr, which is the worker's: stdout is the channel.
  logLevel: logLevel.ERROR,
  logCreator: () => ({ namespace, log }) => process.stderr.write(`kafkajs ${namespace}: ${log.message}\n`),
})

class Unsupported extends Error {}
// Kafka's error codes that the helper reports itself, where kafkajs answers without one.
const TOPIC_ALREADY_EXISTS = 36

class BrokerError extends Error {
  constructor(code, message) {
    super(message)
    this.code = code
  }
}

const COMPRESSIONS = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP }
const CONFIG_SOURCES = ['UNKNOWN', 'DYNAMIC_TOPIC_CONFIG', 'DYNAMIC_BROKER_CONFIG', 'DYNAMIC_DEFAULT_BROKER_CONFIG',
  'STATIC_BROKER_CONFIG', 'DEFAULT_CONFIG', 'DYNAMIC_BROKER_LOGGER_CONFIG']
const RESOURCE_TYPES = { topic: ConfigResourceTypes.TOPIC, broker: ConfigResourceTypes.BROKER }

const hex = buffer => (buffer === null || buffer === undefined ? null : Buffer.from(buffer).toString('hex'))
const bytes = text => (text === null ? null : Buffer.from(text, 'hex'))

function deadline(promise, what) {
  let timer
  const expiry = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${TIMEOUT_MS} ms`)), TIMEOUT_MS)
  })
  return Promise.race([promise, expiry]).finally(() => clearTimeout(timer))
}

// The broker's error code that an error of kafkajs carries, if it carries one: protocol
// errors have it, aggregate errors hold them in `errors` (or by partition or group), retried
// ones in `originalError`.
function brokerCode(error, depth = 0) {
  if (!error || depth > 5) return null
  if (typeof error.code === 'number' && typeof error.type === 'string') return error.code
  const partsErrors = [...(error.partitions || []), ...(error.groups || [])].map(part => part.error)
  for (const inner of [...(error.errors || []), ...partsErrors, error.originalError, error.cause]) {
    const code = brokerCode(inner, depth + 1)
    if (code !== null) return code
  }
  return null
}

let admin = null
async function theAdmin() {
  if (admin === null) {
    // kafkajs retries what it takes for a passing state, UNKNOWN_TOPIC_OR_PARTITION included:
    // briefly, so that deleting an unknown topic is refused in a second, not fifteen.
    admin = kafka.admin({ retry: { retries: 3, initialRetryTime: 100 } })
    await admin.connect()
  }
  return admin
}

async function metadataOf(topic) {
  const found = await (await theAdmin()).fetchTopicMetadata({ topics: [topic] })
  return found.topics[0].partitions
}

// Headers as kafkajs takes them: a name repeated is an array of its values, in order.
// kafkajs keeps only the relative order of one name's values, so records whose headers
// interleave names would come back reordered: those it cannot send as they are.
function kafkajsHeaders(headers) {
  const out = {}
  let previous = null
  for (const [name, value] of headers) {
    if (value === null) throw new Unsupported('way to send a header with a null value (it sends an empty one)')
    if (name in out && name !== previous) throw new Unsupported('way to send headers whose names interleave (it groups them by name)')
    out[name] = name in out ? [].concat(out[name], bytes(value)) : bytes(value)
    previous = name
  }
  return out
}

function recordOf(message, topic, partition) {
  const headers = []
  for (const [name, value] of Object.entries(message.headers || {})) {
    for (const one of Array.isArray(value) ? value : [value]) headers.push([name, hex(one)])
  }
  return { key: hex(message.key), value: hex(message.value), headers, timestamp: Number(message.timestamp),
    partition, offset: Number(message.offset) }
}

// kafkajs answers a send with each partition's base offset only: this partitioner, kafkajs's
// own, writes down on each message the partition it picks, so that offsets can be counted
// from the base in send order.
function recordingPartitioner() {
  const inner = Partitioners.DefaultPartitioner()
  return args => {
    args.message.partition = inner(args)
    return args.message.partition
  }
}

// Sends the records (acks=all) and returns them as acknowledged.
async function send(producer, topic, records, compression) {
  if (!(compression in COMPRESSIONS)) throw new Unsupported(`${compression} codec (kafkajs ships gzip only)`)
  const now = Date.now()
  const messages = records.map(r => ({ key: bytes(r.key), value: bytes(r.value), headers: kafkajsHeaders(r.headers),
    timestamp: String(r.timestamp === null ? now : r.timestamp), partition: r.partition ?? undefined }))
  const answers = await deadline(producer.send({ topic, messages, acks: -1, compression: COMPRESSIONS[compression],
    timeout: TIMEOUT_MS }), 'produce')
  const next = {}
  for (const a of answers) next[a.partition] = Number(a.baseOffset)
  return records.map((r, i) => ({ ...r, timestamp: Number(messages[i].timestamp), partition: messages[i].partition,
    offset: next[messages[i].partition]++ }))
}

// Reads partitions from given offsets up to given ends. kafkajs consumes only as a group
// member, so this joins a group of its own and seeks once assigned.
async function consume({ topic, ends, starts, isolation }) {
  const wanted = Object.entries(ends).filter(([, end]) => end > 0).map(([p, end]) => [Number(p), end])
  if (wanted.length === 0) return []
  const consumer = kafka.consumer({ groupId: `kafkapy-compat-${process.pid}-${Date.now()}`, maxWaitTimeInMs: 100,
    readUncommitted: isolation !== 'read_committed', allowAutoTopicCreation: false })
  const got = []
  const positions = Object.fromEntries(wanted.map(([p]) => [p, starts[p] || 0]))
  let finished
  const done = new Promise(resolve => { finished = resolve })
  const check = () => { if (wanted.every(([p, end]) => positions[p] >= end)) finished() }
  consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
    if (payload.topic === topic && payload.partition in positions && payload.lastOffset !== null) {
      positions[payload.partition] = Math.max(positions[payload.partition], Number(payload.lastOffset) + 1)
      check()
    }
  })
  try {
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (!(batch.partition in positions)) return
        for (const m of batch.messages) got.push(recordOf(m, topic, batch.partition))
      },
    })
    for (const [partition] of wanted) consumer.seek({ topic, partition, offset: String(starts[partition] || 0) })
    await deadline(done, `consuming up to ${JSON.stringify(ends)}`)
    return got
  } finally {
    await consumer.disconnect()
  }
}

// Kafka's answers to EndTxn that a client retries: the transaction coordinator is loading
// (after a restart) or has moved.
const COORDINATOR_MOVING = [14, 15, 16]

// kafkajs sends EndTxn once: a coordinator still loading makes the transaction fail, and
// kafkajs allows no second commit or abort of it.
async function endTransaction(session, how) {
  try {
    await session.transaction[how]()
  } catch (error) {
    if (COORDINATOR_MOVING.includes(brokerCode(error))) {
      throw new Unsupported(`retry of EndTxn while the transaction coordinator loads or moves (${error.message})`)
    }
    throw error
  } finally {
    session.transaction = null
  }
}

// An ACL as kafkajs takes it, from its parts as Kafka names them.
const aclOf = acl => ({
  resourceType: AclResourceTypes[acl.resource_type], resourceName: acl.resource_name,
  resourcePatternType: ResourcePatternTypes[acl.pattern_type], principal: acl.principal, host: acl.host,
  operation: AclOperationTypes[acl.operation], permissionType: AclPermissionTypes[acl.permission],
})

// Kafka's range assignor, which kafkajs lacks (it ships round robin only): each member
// (in member id order) takes a contiguous run of each topic's partitions, the first ones one
// more when they do not divide evenly.
const rangeAssigner = ({ cluster }) => ({
  name: 'range',
  version: 0,
  async assign({ members, topics }) {
    const ids = members.map(m => m.memberId).sort()
    const assignment = Object.fromEntries(ids.map(id => [id, {}]))
    for (const topic of topics) {
      const partitions = cluster.findTopicPartitionMetadata(topic).map(m => m.partitionId).sort((a, b) => a - b)
      const each = Math.floor(partitions.length / ids.length)
      const extra = partitions.length % ids.length
      let next = 0
      ids.forEach((id, i) => {
        const count = each + (i < extra ? 1 : 0)
        assignment[id][topic] = partitions.slice(next, next + count)
        next += count
      })
    }
    return ids.map(memberId => ({ memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: this.version, assignment: assignment[memberId] }) }))
  },
  protocol({ topics }) {
    return { name: this.name, metadata: AssignerProtocol.MemberMetadata.encode({ version: this.version, topics }) }
  },
})

const producers = new Map()
const members = new Map()
let nextHandle = 1

// A group member that consumes without pause into a buffer, which group_poll empties.
// kafkajs has no rebalance listener: its GROUP_JOIN event tells each new assignment. Its
// protocol is eager, so every join has revoked all the member held before, which the
// helper reports then, ahead of the new assignment.
async function openMember(m) {
  if (m.protocol !== 'classic') throw new Unsupported(`'${m.protocol}' group protocol (KIP-848), only the classic one`)
  if (m.instance_id !== null) throw new Unsupported('static membership (group.instance.id)')
  if (m.assignor !== 'range') throw new Unsupported(`${m.assignor} assignor (its rebalances are eager only)`)
  const consumer = kafka.consumer({ groupId: m.group, sessionTimeout: m.session_timeout_ms, heartbeatInterval: 500,
    maxWaitTimeInMs: 100, readUncommitted: m.isolation !== 'read_committed', allowAutoTopicCreation: false,
    partitionAssigners: [rangeAssigner] })
  const member = { consumer, group: m.group, topic: m.topic, records: [], rebalances: [], held: [], memberId: null,
    failure: null, changed: () => {} }
  const changed = () => member.changed()
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    if (member.held.length > 0) member.rebalances.push(['revoked', member.held])
    member.held = payload.memberAssignment[m.topic] || []
    member.rebalances.push(['assigned', member.held])
    member.memberId = payload.memberId
    changed()
  })
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    member.failure = payload.error
    changed()
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [m.topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const message of batch.messages) member.records.push(recordOf(message, batch.topic, batch.partition))
      changed()
    },
  })
  const handle = nextHandle++
  members.set(handle, member)
  return handle
}

// What the member consumed and how its assignment changed since the last poll, waiting up
// to timeout_ms for something.
async function pollMember({ handle, timeout_ms: timeoutMs }) {
  const member = members.get(handle)
  if (member.records.length === 0 && member.rebalances.length === 0 && member.failure === null) {
    await new Promise(resolve => {
      const timer = setTimeout(resolve, timeoutMs)
      member.changed = () => { clearTimeout(timer); resolve() }
    })
    member.changed = () => {}
  }
  if (member.failure !== null) throw member.failure
  const polled = { records: member.records, rebalances: member.rebalances }
  member.records = []
  member.rebalances = []
  return polled
}

const calls = {
  async cluster() {
    const found = await (await theAdmin()).describeCluster()
    return { cluster_id: found.clusterId, controller_id: found.controller,
      brokers: found.brokers.map(b => [b.nodeId, b.host, b.port]) }
  },
  async topic_names() {
    return (await theAdmin()).listTopics()
  },
  async partitions({ topic }) {
    return (await metadataOf(topic)).sort((a, b) => a.partitionId - b.partitionId)
      .map(p => [p.partitionId, p.leader, p.replicas, p.isr])
  },
  async create_topic({ topic, partitions, configs }) {
    const created = await (await theAdmin()).createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1,
        configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }],
      timeout: TIMEOUT_MS,
    })
    // kafkajs answers false, not an error, when the topic exists.
    if (!created) throw new BrokerError(TOPIC_ALREADY_EXISTS, `topic ${topic} already exists`)
  },
  async delete_topic({ topic }) {
    await (await theAdmin()).deleteTopics({ topics: [topic], timeout: TIMEOUT_MS })
  },
  async create_partitions({ topic, total }) {
    await (await theAdmin()).createPartitions({ topicPartitions: [{ topic, count: total }], timeout: TIMEOUT_MS })
  },
  async produce({ topic, records, compression }) {
    const producer = kafka.producer({ createPartitioner: recordingPartitioner })
    await producer.connect()
    try {
      return await send(producer, topic, records, compression)
    } finally {
      await producer.disconnect()
    }
  },
  consume,
  async watermarks({ topic, partition }) {
    const found = (await (await theAdmin()).fetchTopicOffsets(topic)).find(o => o.partition === partition)
    return [Number(found.low), Number(found.high)]
  },
  async offset_for_time({ topic, partition, timestamp }) {
    const found = (await (await theAdmin()).fetchTopicOffsetsByTimestamp(topic, timestamp))
      .find(o => o.partition === partition)
    // kafkajs answers the high watermark where Kafka finds no record at or after the time.
    const [, high] = await calls.watermarks({ topic, partition })
    return Number(found.offset) === -1 || Number(found.offset) === high ? null : Number(found.offset)
  },
  async describe_configs({ resource: [type, name] }) {
    const found = await (await theAdmin()).describeConfigs({
      resources: [{ type: RESOURCE_TYPES[type], name }], includeSynonyms: false })
    const [described] = found.resources
    if (described.errorCode) throw new BrokerError(described.errorCode, described.errorMessage)
    return Object.fromEntries(described.configEntries.map(e => [e.configName,
      [e.configValue, CONFIG_SOURCES[e.configSource] || 'UNKNOWN', e.readOnly]]))
  },
  async alter_configs({ resource: [type, name], configs }) {
    const found = await (await theAdmin()).alterConfigs({ validateOnly: false, resources: [{ type: RESOURCE_TYPES[type],
      name, configEntries: Object.entries(configs).map(([n, value]) => ({ name: n, value })) }] })
    for (const r of found.resources) if (r.errorCode) throw new BrokerError(r.errorCode, r.errorMessage)
  },
  async delete_records({ topic, partition, before }) {
    // Its admin finds the partition's leader only in metadata it has already loaded.
    await metadataOf(topic)
    await (await theAdmin()).deleteTopicRecords({ topic, partitions: [{ partition, offset: String(before) }] })
    return (await calls.watermarks({ topic, partition }))[0]
  },
  async list_groups() {
    const { groups } = await (await theAdmin()).listGroups()
    const described = await (await theAdmin()).describeGroups(groups.map(g => g.groupId))
    return Object.fromEntries(described.groups.map(g => [g.groupId, g.state]))
  },
  async describe_group({ group }) {
    const [found] = (await (await theAdmin()).describeGroups([group])).groups
    if (found.errorCode) throw new BrokerError(found.errorCode, `DescribeGroups of ${group}`)
    const members = found.members.map(m => {
      const decoded = m.memberAssignment.length ? AssignerProtocol.MemberAssignment.decode(m.memberAssignment) : null
      const assignment = Object.entries(decoded ? decoded.assignment : {})
        .flatMap(([topic, partitions]) => partitions.map(p => [topic, p]))
      // kafkajs's DescribeGroups version predates static members (group.instance.id).
      return [m.memberId, null, assignment]
    })
    return { state: found.state, assignor: found.protocol, members }
  },
  async create_acls({ acls }) {
    await (await theAdmin()).createAcls({ acl: acls.map(aclOf) })
  },
  async delete_acls({ acls }) {
    const { filterResponses } = await (await theAdmin()).deleteAcls({ filters: acls.map(aclOf) })
    for (const r of filterResponses) if (r.errorCode) throw new BrokerError(r.errorCode, r.errorMessage)
  },
  async group_offsets({ group }) {
    const found = await (await theAdmin()).fetchOffsets({ groupId: group })
    return found.flatMap(t => t.partitions.filter(p => Number(p.offset) >= 0)
      .map(p => [t.topic, p.partition, Number(p.offset), p.metadata || '']))
  },
  async alter_group_offsets({ group, offsets }) {
    if (offsets.some(([, , , metadata]) => metadata)) throw new Unsupported('way to alter a group\'s offsets with metadata')
    const byTopic = {}
    for (const [topic, partition, offset] of offsets) {
      (byTopic[topic] = byTopic[topic] || []).push({ partition, offset: String(offset) })
    }
    for (const [topic, partitions] of Object.entries(byTopic)) {
      try {
        await (await theAdmin()).setOffsets({ groupId: group, topic, partitions })
      } catch (error) {
        // kafkajs checks the group's state itself first, and sends nothing for a group with members.
        if (/must have no running instances/.test(error.message)) {
          throw new Unsupported(`way to send OffsetCommit for a group with members, as an administrator (${error.message})`)
        }
        throw error
      }
    }
  },
  async delete_group({ group }) {
    await (await theAdmin()).deleteGroups([group])
  },
  async producer_open({ transactional_id: transactionalId, transaction_timeout_ms: transactionTimeout }) {
    const options = { idempotent: true, maxInFlightRequests: 5, allowAutoTopicCreation: false,
      createPartitioner: recordingPartitioner }
    if (transactionalId !== null) options.transactionalId = transactionalId
    if (transactionTimeout !== null) options.transactionTimeout = transactionTimeout
    const producer = kafka.producer(options)
    await producer.connect()
    if (transactionalId !== null) {
      // kafkajs initializes transactions with the first one: an empty one, begun and
      // aborted, initializes them now, as the other clients do when asked.
      await (await producer.transaction()).abort()
    }
    const handle = nextHandle++
    producers.set(handle, { producer, transactional: transactionalId !== null, transaction: null })
    return handle
  },
  async producer_produce({ handle, topic, records }) {
    const session = producers.get(handle)
    return send(session.transaction || session.producer, topic, records, 'none')
  },
  async producer_begin({ handle }) {
    const session = producers.get(handle)
    session.transaction = await session.producer.transaction()
  },
  async producer_commit({ handle }) {
    await endTransaction(producers.get(handle), 'commit')
  },
  async producer_abort({ handle }) {
    await endTransaction(producers.get(handle), 'abort')
  },
  async producer_send_offsets({ handle, consumer, offsets }) {
    const member = members.get(consumer)
    await producers.get(handle).transaction.sendOffsets({ consumerGroupId: member.group, topics: [{ topic: member.topic,
      partitions: Object.entries(offsets).map(([partition, offset]) => ({ partition: Number(partition),
        offset: String(offset) })) }] })
  },
  group_open: ({ membership }) => openMember(membership),
  group_poll: pollMember,
  async group_commit({ handle, offsets }) {
    const member = members.get(handle)
    await member.consumer.commitOffsets(Object.entries(offsets).map(([partition, [offset, metadata]]) => ({
      topic: member.topic, partition: Number(partition), offset: String(offset), metadata })))
  },
  async group_member_id({ handle }) {
    return members.get(handle).memberId
  },
  async group_close({ handle }) {
    await members.get(handle).consumer.disconnect()
    members.delete(handle)
  },
  async producer_close({ handle }) {
    await producers.get(handle).producer.disconnect()
    producers.delete(handle)
  },
}

const WHAT_IS_MISSING = {
  api_versions: "call that returns the broker's ApiVersions",
  incremental_alter_configs: 'IncrementalAlterConfigs call',
}

async function answer(line) {
  const { op, args } = JSON.parse(line)
  try {
    if (!(op in calls)) throw new Unsupported(WHAT_IS_MISSING[op] || `${op} call`)
    return { result: (await calls[op](args)) ?? null }
  } catch (error) {
    if (error instanceof Unsupported) return { unsupported: error.message }
    const code = error instanceof BrokerError ? error.code : brokerCode(error)
    if (code !== null) return { error: { code, message: `${error.name}: ${error.message}` } }
    process.stderr.write(`${error.stack}\n`)
    return { failure: `${error.name}: ${error.message}` }
  }
}

// The helper ends with its input: the adapter has closed its sessions by then, and if its
// process was killed, the helper's going with it, connections dropped, is the crash the
// scenario made (a member leaving its group here would be a graceful exit instead).
async function main() {
  const lines = readline.createInterface({ input: process.stdin, terminal: false })
  for await (const line of lines) {
    process.stdout.write(JSON.stringify(await answer(line)) + '\n')
  }
}

main().then(() => process.exit(0), error => {
  process.stderr.write(`${error.stack}\n`)
  process.exit(1)
})
