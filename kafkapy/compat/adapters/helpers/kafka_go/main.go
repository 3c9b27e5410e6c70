// The helper that drives segmentio's kafka-go for kafkapy's compatibility suite: one call a
// JSON line on stdin, one answer a JSON line on stdout (the protocol is described in
// adapters/bridge.py). It is built against Debian's kafka-go 0.2, which speaks the
// protocol versions of Kafka 0.10 and 0.11 (Produce v2, Fetch v2, ListOffsets v1:
// message format v1, which has no headers).
//
//	kafka-go-helper BOOTSTRAP
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/gzip"
	"github.com/segmentio/kafka-go/lz4"
	"github.com/segmentio/kafka-go/snappy"
)

const timeout = 30 * time.Second

// maxFetchBytes bounds one fetch: records near Kafka's default message.max.bytes fit.
const maxFetchBytes = 4 << 20

var bootstrap string

// The topics this helper created and has not deleted: kafka-go's CreateTopics reports no
// TOPIC_ALREADY_EXISTS, so a second creation of one of them cannot show the broker's refusal.
var created = map[string]bool{}

type record struct {
	Key       *string     `json:"key"`
	Value     *string     `json:"value"`
	Headers   [][2]string `json:"headers"`
	Timestamp *int64      `json:"timestamp"`
	Partition *int        `json:"partition"`
	Offset    *int64      `json:"offset"`
}

type unsupported struct{ what string }

func (u unsupported) Error() string { return u.what }

func hexOf(b []byte) *string {
	if b == nil {
		return nil
	}
	text := hex.EncodeToString(b)
	return &text
}

func bytesOf(text *string) ([]byte, error) {
	if text == nil {
		return nil, nil
	}
	b, err := hex.DecodeString(*text)
	if b == nil {
		b = []byte{}
	}
	return b, err
}

func dial() (*kafka.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return kafka.DialContext(ctx, "tcp", bootstrap)
}

func leader(topic string, partition int) (*kafka.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", bootstrap, topic, partition)
	if err == nil {
		err = conn.SetDeadline(time.Now().Add(timeout))
	}
	return conn, err
}

func partitionsOf(topic string) ([]kafka.Partition, error) {
	conn, err := dial()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	found, err := conn.ReadPartitions(topic)
	sort.Slice(found, func(i, j int) bool { return found[i].ID < found[j].ID })
	return found, err
}

func ids(brokers []kafka.Broker) []int {
	out := []int{}
	for _, b := range brokers {
		out = append(out, b.ID)
	}
	return out
}

var codecs = map[string]kafka.CompressionCodec{
	"none": nil, "gzip": gzip.NewCompressionCodec(), "snappy": snappy.NewCompressionCodec(), "lz4": lz4.NewCompressionCodec(),
}

// produce sends each partition's records as one batch with acks=all. kafka-go 0.2 keeps
// the base offset of Produce's answer to itself, so a record's offset is counted back from
// the partition's end once its batch is acknowledged: right while the helper is the only
// writer of the partition, as it is in the scenarios' own topics.
func produce(args struct {
	Topic       string   `json:"topic"`
	Records     []record `json:"records"`
	Compression string   `json:"compression"`
}) ([]record, error) {
	codec, known := codecs[args.Compression]
	if !known {
		return nil, unsupported{args.Compression + " codec (kafka-go 0.2 has gzip, snappy and lz4)"}
	}
	partitions, err := partitionsOf(args.Topic)
	if err != nil {
		return nil, err
	}
	byPartition := map[int][]int{}
	var order []int
	now := time.Now().UnixNano() / int64(time.Millisecond)
	acked := make([]record, len(args.Records))
	// Whether null (true) and empty (false) keys or values are among the records.
	nullOrEmpty := map[bool]bool{}
	for i, r := range args.Records {
		if len(r.Headers) > 0 {
			return nil, unsupported{"way to send headers (kafka-go 0.2 writes message format v1, which has none)"}
		}
		if r.Key == nil || *r.Key == "" {
			nullOrEmpty[r.Key == nil] = true
		}
		if r.Value == nil || *r.Value == "" {
			nullOrEmpty[r.Value == nil] = true
		}
		if nullOrEmpty[true] && nullOrEmpty[false] {
			return nil, unsupported{"way to tell null keys and values from empty ones: kafka-go 0.2 reads both as null"}
		}
		p := 0
		if r.Partition != nil {
			p = *r.Partition
		} else if r.Key != nil {
			// kafka-go's Hash balancer: FNV-1a of the key.
			h := fnv.New32a()
			key, _ := bytesOf(r.Key)
			h.Write(key)
			p = int(h.Sum32() % uint32(len(partitions)))
		} else {
			p = i % len(partitions)
		}
		if _, seen := byPartition[p]; !seen {
			order = append(order, p)
		}
		byPartition[p] = append(byPartition[p], i)
		acked[i] = r
		stamp := now
		if r.Timestamp != nil {
			stamp = *r.Timestamp
		}
		partition := p
		acked[i].Timestamp, acked[i].Partition = &stamp, &partition
	}
	for _, p := range order {
		conn, err := leader(args.Topic, p)
		if err != nil {
			return nil, err
		}
		messages := []kafka.Message{}
		for _, i := range byPartition[p] {
			key, _ := bytesOf(args.Records[i].Key)
			value, _ := bytesOf(args.Records[i].Value)
			if args.Records[i].Key == nil {
				key = nil
			}
			if args.Records[i].Value == nil {
				value = nil
			}
			stamp := *acked[i].Timestamp
			messages = append(messages, kafka.Message{Key: key, Value: value,
				Time: time.Unix(stamp/1000, (stamp%1000)*int64(time.Millisecond))})
		}
		err = conn.SetRequiredAcks(-1)
		if err == nil {
			_, err = conn.WriteCompressedMessages(codec, messages...)
		}
		var end int64
		if err == nil {
			end, err = conn.ReadLastOffset()
		}
		conn.Close()
		if err != nil {
			return nil, err
		}
		for n, i := range byPartition[p] {
			offset := end - int64(len(messages)) + int64(n)
			acked[i].Offset = &offset
		}
	}
	return acked, nil
}

// consume reads each partition from its start up to its end, fetch after fetch.
func consume(args struct {
	Topic     string           `json:"topic"`
	Ends      map[string]int64 `json:"ends"`
	Starts    map[string]int64 `json:"starts"`
	Isolation string           `json:"isolation"`
}) ([]record, error) {
	if args.Isolation == "read_committed" {
		return nil, unsupported{"read_committed isolation (kafka-go 0.2 fetches with Fetch v2, before transactions)"}
	}
	got := []record{}
	deadline := time.Now().Add(timeout)
	for name, end := range args.Ends {
		partition, _ := strconv.Atoi(name)
		if end <= 0 {
			continue
		}
		conn, err := leader(args.Topic, partition)
		if err != nil {
			return nil, err
		}
		position := args.Starts[name]
		first, _, err := conn.ReadOffsets()
		if err == nil && position < first {
			position = first // below the log start, as a consumer resetting to the earliest offset
		}
		for err == nil && position < end {
			if time.Now().After(deadline) {
				err = fmt.Errorf("consumed partition %d up to %d in %v, wanted %d", partition, position, timeout, end)
				break
			}
			if _, err = conn.Seek(position, kafka.SeekAbsolute); err != nil {
				break
			}
			batch := conn.ReadBatch(1, maxFetchBytes)
			for {
				m, readErr := batch.ReadMessage()
				if readErr != nil {
					break
				}
				stamp := m.Time.UnixNano() / int64(time.Millisecond)
				p, offset := partition, m.Offset
				got = append(got, record{Key: hexOf(m.Key), Value: hexOf(m.Value), Headers: [][2]string{},
					Timestamp: &stamp, Partition: &p, Offset: &offset})
				position = m.Offset + 1
			}
			if closeErr := batch.Close(); closeErr != nil && !errors.Is(closeErr, io.EOF) {
				err = closeErr
			}
			// The batch ends at the high watermark where the log has a gap before it.
			if err == nil && batch.HighWaterMark() >= end && position < end {
				position = maxOffset(position, batch.Offset())
			}
		}
		conn.Close()
		if err != nil {
			return nil, err
		}
	}
	return got, nil
}

func maxOffset(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

func call(op string, raw json.RawMessage) (interface{}, error) {
	switch op {
	case "partitions":
		var args struct{ Topic string }
		json.Unmarshal(raw, &args)
		found, err := partitionsOf(args.Topic)
		out := [][]interface{}{}
		for _, p := range found {
			out = append(out, []interface{}{p.ID, p.Leader.ID, ids(p.Replicas), ids(p.Isr)})
		}
		return out, err
	case "create_topic":
		var args struct {
			Topic      string
			Partitions int
			Configs    map[string]string
		}
		json.Unmarshal(raw, &args)
		config := kafka.TopicConfig{Topic: args.Topic, NumPartitions: args.Partitions, ReplicationFactor: 1}
		for name, value := range args.Configs {
			config.ConfigEntries = append(config.ConfigEntries, kafka.ConfigEntry{ConfigName: name, ConfigValue: value})
		}
		if created[args.Topic] {
			return nil, unsupported{"way to learn that a topic exists: its CreateTopics takes TOPIC_ALREADY_EXISTS for success"}
		}
		conn, err := dial()
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		err = conn.CreateTopics(config)
		if err == nil {
			created[args.Topic] = true
		}
		return nil, err
	case "delete_topic":
		var args struct{ Topic string }
		json.Unmarshal(raw, &args)
		conn, err := dial()
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		delete(created, args.Topic)
		return nil, conn.DeleteTopics(args.Topic)
	case "produce":
		var args struct {
			Topic       string   `json:"topic"`
			Records     []record `json:"records"`
			Compression string   `json:"compression"`
		}
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, err
		}
		return produce(args)
	case "consume":
		var args struct {
			Topic     string           `json:"topic"`
			Ends      map[string]int64 `json:"ends"`
			Starts    map[string]int64 `json:"starts"`
			Isolation string           `json:"isolation"`
		}
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, err
		}
		return consume(args)
	case "watermarks":
		var args struct {
			Topic     string
			Partition int
		}
		json.Unmarshal(raw, &args)
		conn, err := leader(args.Topic, args.Partition)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		first, last, err := conn.ReadOffsets()
		return []int64{first, last}, err
	case "offset_for_time":
		var args struct {
			Topic     string
			Partition int
			Timestamp int64
		}
		json.Unmarshal(raw, &args)
		conn, err := leader(args.Topic, args.Partition)
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		offset, err := conn.ReadOffset(time.Unix(args.Timestamp/1000, (args.Timestamp%1000)*int64(time.Millisecond)))
		if err != nil || offset < 0 {
			return nil, err
		}
		return offset, nil
	}
	return nil, unsupported{whatIsMissing[op]}
}

// What kafka-go 0.2 lacks, by call; a call not named here is answered by its name.
var whatIsMissing = map[string]string{
	"api_versions":              "call that returns the broker's ApiVersions",
	"topic_names":               "call that lists topics (its Metadata v1 request without topics asks for none)",
	"cluster":                   "call that describes the cluster (it shows no cluster id or controller)",
	"producer_open":             "idempotent or transactional producer",
	"group_open":                "rebalance listener (its group reader hides assignments)",
	"describe_configs":          "DescribeConfigs call",
	"alter_configs":             "AlterConfigs call",
	"delete_records":            "DeleteRecords call",
	"list_groups":               "public ListGroups call",
	"group_offsets":             "public OffsetFetch call",
	"create_acls":               "CreateAcls call",
	"delete_acls":               "DeleteAcls call",
	"create_partitions":         "CreatePartitions call",
	"incremental_alter_configs": "IncrementalAlterConfigs call",
	"describe_group":            "public DescribeGroups call",
	"alter_group_offsets":       "call that alters a group's offsets",
	"delete_group":              "DeleteGroups call",
}

func answer(line []byte) map[string]interface{} {
	var request struct {
		Op   string          `json:"op"`
		Args json.RawMessage `json:"args"`
	}
	if err := json.Unmarshal(line, &request); err != nil {
		return map[string]interface{}{"failure": err.Error()}
	}
	result, err := call(request.Op, request.Args)
	var brokerError kafka.Error
	var lacks unsupported
	switch {
	case err == nil:
		return map[string]interface{}{"result": result}
	case errors.As(err, &lacks):
		if lacks.what == "" {
			lacks.what = request.Op + " call"
		}
		return map[string]interface{}{"unsupported": lacks.what}
	case errors.As(err, &brokerError):
		return map[string]interface{}{"error": map[string]interface{}{"code": int(brokerError), "message": brokerError.Error()}}
	}
	return map[string]interface{}{"failure": err.Error()}
}

func main() {
	bootstrap = os.Args[1]
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	out := json.NewEncoder(os.Stdout)
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			out.Encode(answer(line))
		}
		if err != nil {
			return
		}
	}
}
