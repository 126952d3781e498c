package s3

import (
	"bytes"
	"context"
	"crypto/md5" //nolint:gosec // MD5 is required for S3 ETag calculation per AWS specification
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sivchari/kumo/internal/storage"
)

type blobSequenceReader struct {
	dataDir string
	refs    []string
	index   int
	current *os.File
}

func (r *blobSequenceReader) Read(p []byte) (int, error) {
	for {
		if r.current == nil {
			if r.index >= len(r.refs) {
				return 0, io.EOF
			}

			file, err := os.Open(blobPath(r.dataDir, r.refs[r.index]))
			if err != nil {
				return 0, fmt.Errorf("failed to open multipart blob: %w", err)
			}

			r.current = file
			r.index++
		}

		n, err := r.current.Read(p)
		if err != nil && err != io.EOF {
			return n, fmt.Errorf("failed to read multipart blob: %w", err)
		}

		if err == nil {
			return n, nil
		}

		if closeErr := r.current.Close(); closeErr != nil {
			return n, fmt.Errorf("failed to close multipart blob: %w", closeErr)
		}

		r.current = nil

		if n > 0 {
			return n, nil
		}
	}
}

func (r *blobSequenceReader) Close() error {
	if r.current == nil {
		return nil
	}

	err := r.current.Close()
	r.current = nil

	if err != nil {
		return fmt.Errorf("failed to close multipart blob: %w", err)
	}

	return nil
}

// Versioning status constants.
const (
	VersioningEnabled   = "Enabled"
	VersioningSuspended = "Suspended"
	VersionIDNull       = "null"
)

// Storage defines the S3 storage interface.
type Storage interface {
	// Bucket operations
	CreateBucket(ctx context.Context, name string) error
	DeleteBucket(ctx context.Context, name string) error
	ListBuckets(ctx context.Context) ([]Bucket, error)
	BucketExists(ctx context.Context, name string) (bool, error)

	// Object operations
	PutObject(ctx context.Context, bucket, key string, body io.Reader, metadata map[string]string) (*Object, error)
	// PutObjectIf is PutObject with S3 conditional-write preconditions
	// (If-Match / If-None-Match: *) evaluated atomically with the insert,
	// so two concurrent conditional PUTs can't both pass.
	PutObjectIf(ctx context.Context, bucket, key string, body io.Reader, metadata map[string]string, cond PutCondition) (*Object, error)
	GetObject(ctx context.Context, bucket, key string) (*Object, error)
	GetObjectVersion(ctx context.Context, bucket, key, versionID string) (*Object, error)
	DeleteObject(ctx context.Context, bucket, key string) (*Object, error)
	DeleteObjectVersion(ctx context.Context, bucket, key, versionID string) (*Object, error)
	HeadObject(ctx context.Context, bucket, key string) (*Object, error)
	ListObjects(ctx context.Context, bucket, prefix, delimiter string, maxKeys int) ([]Object, []string, error)

	// Versioning operations
	PutBucketVersioning(ctx context.Context, bucket, status string) error
	GetBucketVersioning(ctx context.Context, bucket string) (string, error)
	ListObjectVersions(ctx context.Context, bucket, prefix, delimiter string, maxKeys int) ([]Object, []string, error)

	// Multipart upload operations
	CreateMultipartUpload(ctx context.Context, bucket, key string, metadata map[string]string) (*MultipartUpload, error)
	UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int, body io.Reader) (*Part, error)
	CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []PartRequest) (*Object, error)
	// CompleteMultipartUploadIf is CompleteMultipartUpload with the same
	// conditional-write preconditions as PutObjectIf.
	CompleteMultipartUploadIf(ctx context.Context, bucket, key, uploadID string, parts []PartRequest, cond PutCondition) (*Object, error)
	AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error
	ListMultipartUploads(ctx context.Context, bucket, prefix string, maxUploads int) ([]*MultipartUpload, error)
	ListParts(ctx context.Context, bucket, key, uploadID string, maxParts int) ([]*Part, error)
	UploadPartCopy(ctx context.Context, dstBucket, dstKey, uploadID string, partNumber int, srcBucket, srcKey, srcVersionID string, copyRange *CopyRange) (*Part, error)

	// Object tagging
	PutObjectTagging(ctx context.Context, bucket, key string, tags map[string]string) error
	GetObjectTagging(ctx context.Context, bucket, key string) (map[string]string, error)

	// Bucket tagging
	PutBucketTagging(ctx context.Context, bucket string, tags map[string]string) error
	GetBucketTagging(ctx context.Context, bucket string) (map[string]string, error)
	DeleteBucketTagging(ctx context.Context, bucket string) error

	// Object ACL
	PutObjectACL(ctx context.Context, bucket, key string, acl *ObjectACL) error
	GetObjectACL(ctx context.Context, bucket, key string) (*ObjectACL, error)

	// Notification and CORS
	SetEventBridgeNotification(ctx context.Context, bucket string, enabled bool)
	IsEventBridgeEnabled(ctx context.Context, bucket string) bool
	SetQueueConfigurations(ctx context.Context, bucket string, configs []QueueConfiguration)
	GetQueueConfigurations(ctx context.Context, bucket string) []QueueConfiguration
	SetLambdaConfigurations(ctx context.Context, bucket string, configs []LambdaFunctionConfiguration)
	GetLambdaConfigurations(ctx context.Context, bucket string) []LambdaFunctionConfiguration
	SetTopicConfigurations(ctx context.Context, bucket string, configs []TopicConfiguration)
	GetTopicConfigurations(ctx context.Context, bucket string) []TopicConfiguration
	SetCORSConfiguration(ctx context.Context, bucket string, rules []CORSRule)
	GetCORSRules(ctx context.Context, bucket string) []CORSRule

	PutPublicAccessBlock(ctx context.Context, bucket string, cfg PublicAccessBlockConfig) error
	GetPublicAccessBlock(ctx context.Context, bucket string) (*PublicAccessBlockConfig, error)
	DeletePublicAccessBlock(ctx context.Context, bucket string) error

	PutBucketEncryption(ctx context.Context, bucket string, cfg ServerSideEncryptionConfig) error
	GetBucketEncryption(ctx context.Context, bucket string) (*ServerSideEncryptionConfig, error)
	PutBucketPolicy(ctx context.Context, bucket, document string) error
	GetBucketPolicy(ctx context.Context, bucket string) (string, error)
	DeleteBucketPolicy(ctx context.Context, bucket string) error
	DeleteBucketEncryption(ctx context.Context, bucket string) error

	PutBucketLogging(ctx context.Context, bucket string, cfg BucketLoggingConfig) error
	GetBucketLogging(ctx context.Context, bucket string) (*BucketLoggingConfig, error)

	// Bucket website / lifecycle / object restore.
	PutBucketWebsite(ctx context.Context, bucket string, cfg *WebsiteConfiguration) error
	GetBucketWebsite(ctx context.Context, bucket string) (*WebsiteConfiguration, error)
	DeleteBucketWebsite(ctx context.Context, bucket string) error

	PutBucketLifecycle(ctx context.Context, bucket string, cfg *LifecycleConfiguration) error
	GetBucketLifecycle(ctx context.Context, bucket string) (*LifecycleConfiguration, error)
	DeleteBucketLifecycle(ctx context.Context, bucket string) error

	PutBucketObjectLockConfiguration(ctx context.Context, bucket string, cfg *ObjectLockConfiguration) error
	GetBucketObjectLockConfiguration(ctx context.Context, bucket string) (*ObjectLockConfiguration, error)

	PutObjectRestore(ctx context.Context, bucket, key string, state *RestoreState) (bool, error)
}

// PutCondition expresses S3 conditional-write preconditions for
// PutObjectIf / CompleteMultipartUploadIf. The zero value imposes no
// condition, matching plain PutObject/CompleteMultipartUpload.
type PutCondition struct {
	// IfMatch is the If-Match header value (quoted or unquoted ETag), or
	// "" if the header was absent.
	IfMatch string
	// IfNoneMatchAny is true when the request carried
	// `If-None-Match: *`, the only If-None-Match form S3 supports on
	// writes.
	IfNoneMatchAny bool
}

// Option is a configuration option for MemoryStorage.
type Option func(*MemoryStorage)

// WithDataDir enables persistent storage in the specified directory.
func WithDataDir(dir string) Option {
	return func(s *MemoryStorage) {
		s.dataDir = dir
	}
}

// Compile-time interface checks.
var (
	_ json.Marshaler   = (*MemoryStorage)(nil)
	_ json.Unmarshaler = (*MemoryStorage)(nil)
)

// MemoryStorage implements Storage with in-memory data.
type MemoryStorage struct {
	mu      sync.RWMutex             `json:"-"`
	Buckets map[string]*MemoryBucket `json:"buckets"`
	dataDir string
}

// MemoryBucket holds the data for a single S3 bucket.
type MemoryBucket struct {
	Name                    string                        `json:"name"`
	CreationDate            time.Time                     `json:"creationDate"`
	Objects                 map[string]*Object            `json:"objects"`                           // current/latest version per key
	Versions                map[string][]*Object          `json:"versions"`                          // all versions per key (newest first)
	VersioningStatus        string                        `json:"versioningStatus"`                  // "", "Enabled", "Suspended"
	VersionIDCounter        uint64                        `json:"versionIdcounter"`                  // counter for generating version IDs
	MultipartUploads        map[string]*MultipartUpload   `json:"-"`                                 // uploadID -> MultipartUpload
	EventBridgeEnabled      bool                          `json:"eventBridgeEnabled"`                // EventBridge notification
	QueueConfigurations     []QueueConfiguration          `json:"queueConfigurations,omitempty"`     // SQS queue notification destinations
	LambdaConfigurations    []LambdaFunctionConfiguration `json:"lambdaConfigurations,omitempty"`    // Lambda notification destinations
	TopicConfigurations     []TopicConfiguration          `json:"topicConfigurations,omitempty"`     // SNS topic notification destinations
	CORSRules               []CORSRule                    `json:"corsRules,omitempty"`               // CORS configuration
	PublicAccessBlock       *PublicAccessBlockConfig      `json:"publicAccessBlock,omitempty"`       // public access block configuration
	Encryption              *ServerSideEncryptionConfig   `json:"encryption,omitempty"`              // server-side encryption configuration
	Policy                  string                        `json:"policy,omitempty"`                  // bucket policy JSON document (empty == not configured)
	Logging                 *BucketLoggingConfig          `json:"logging,omitempty"`                 // server access logging target (nil == disabled)
	ObjectACLs              map[string]*ObjectACL         `json:"objectAcls,omitempty"`              // per-object ACL (key -> ACL)
	Website                 *WebsiteConfiguration         `json:"website,omitempty"`                 // static-site-hosting configuration
	Lifecycle               *LifecycleConfiguration       `json:"lifecycle,omitempty"`               // expiration / transition rules
	ObjectRestores          map[string]*RestoreState      `json:"objectRestores,omitempty"`          // per-object restore state (key -> state)
	Tags                    map[string]string             `json:"tags,omitempty"`                    // bucket tags (nil == no tag set configured)
	ObjectLockConfiguration *ObjectLockConfiguration      `json:"objectLockConfiguration,omitempty"` // bucket default-retention configuration
}

// BucketLoggingConfig stores the destination for server access logs.
// AWS lets logging be opted out by sending an empty BucketLoggingStatus
// (no LoggingEnabled element); we represent that as a nil pointer on
// the bucket. TargetBucket == "" never lands in storage — the handler
// only persists configs with a target.
type BucketLoggingConfig struct {
	TargetBucket string `json:"targetBucket"`
	TargetPrefix string `json:"targetPrefix,omitempty"`
}

// PublicAccessBlockConfig stores the four PAB flags.
type PublicAccessBlockConfig struct {
	BlockPublicAcls       bool `json:"blockPublicAcls"`
	IgnorePublicAcls      bool `json:"ignorePublicAcls"`
	BlockPublicPolicy     bool `json:"blockPublicPolicy"`
	RestrictPublicBuckets bool `json:"restrictPublicBuckets"`
}

// ServerSideEncryptionConfig stores the bucket SSE configuration.
type ServerSideEncryptionConfig struct {
	Rules []ServerSideEncryptionRule `json:"rules"`
}

// ServerSideEncryptionRule represents a single SSE rule.
type ServerSideEncryptionRule struct {
	SSEAlgorithm     string `json:"sseAlgorithm"`               // AES256 / aws:kms / aws:kms:dsse
	KMSMasterKeyID   string `json:"kmsMasterKeyId,omitempty"`   // optional KMS key
	BucketKeyEnabled bool   `json:"bucketKeyEnabled,omitempty"` // S3 Bucket Keys
}

// NewMemoryStorage creates a new in-memory S3 storage.
func NewMemoryStorage(opts ...Option) *MemoryStorage {
	s := &MemoryStorage{
		Buckets: make(map[string]*MemoryBucket),
	}
	for _, o := range opts {
		o(s)
	}

	if s.dataDir != "" {
		_ = storage.Load(s.dataDir, "s3", s)
	}

	return s
}

// MarshalJSON serializes the storage metadata to JSON. Object bodies are NOT
// inlined: when persistence is enabled they are written to the blob store first
// and the snapshot carries only a content reference per object (see blob.go and
// Object.MarshalJSON). This keeps the whole-store marshal small and bounds its
// peak memory, which is what stops the snapshot path from driving the process
// into the OOM killer as the dataset grows.
func (s *MemoryStorage) MarshalJSON() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	if s.dataDir != "" {
		if err := s.persistBodiesLocked(); err != nil {
			return nil, err
		}
	}

	type Alias MemoryStorage

	data, err := json.Marshal(&struct{ *Alias }{Alias: (*Alias)(s)})
	if err != nil {
		return nil, fmt.Errorf("failed to marshal: %w", err)
	}

	return data, nil
}

// UnmarshalJSON restores the storage metadata from JSON and, when persistence is
// enabled, fills each object body from the blob store.
func (s *MemoryStorage) UnmarshalJSON(data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	type Alias MemoryStorage

	aux := &struct{ *Alias }{Alias: (*Alias)(s)}

	if err := json.Unmarshal(data, aux); err != nil {
		return fmt.Errorf("failed to unmarshal: %w", err)
	}

	if s.Buckets == nil {
		s.Buckets = make(map[string]*MemoryBucket)
	}

	// MultipartUploads is tagged json:"-", so it is never present in the
	// snapshot and comes back nil for every restored bucket. Re-initialize it
	// here; otherwise the first CreateMultipartUpload against a restored bucket
	// panics with "assignment to entry in nil map".
	for _, b := range s.Buckets {
		if b.MultipartUploads == nil {
			b.MultipartUploads = make(map[string]*MultipartUpload)
		}
	}

	if s.dataDir != "" {
		if err := s.loadBodiesLocked(); err != nil {
			return err
		}
	}

	return nil
}

// persistBodiesLocked writes every object body to the blob store and prunes
// orphaned blobs. The caller must hold at least the read lock; bodies are only
// read (never mutated), so snapshotting never blocks concurrent reads.
func (s *MemoryStorage) persistBodiesLocked() error {
	referenced := make(map[string]struct{})

	for _, b := range s.Buckets {
		for _, obj := range b.Objects {
			if err := s.persistObjectBody(obj, referenced); err != nil {
				return err
			}
		}

		for _, versions := range b.Versions {
			for _, obj := range versions {
				if err := s.persistObjectBody(obj, referenced); err != nil {
					return err
				}
			}
		}

		for _, upload := range b.MultipartUploads {
			for _, part := range upload.Parts {
				if part.bodyRef != "" {
					referenced[part.bodyRef] = struct{}{}
				}
			}
		}
	}

	gcBlobs(s.dataDir, referenced)

	return nil
}

// persistObjectBody writes one object's body to the blob store, recording its
// reference in referenced (the live set used to GC orphans). Empty bodies carry
// no blob: an empty or delete-marker object round-trips with a nil body.
func (s *MemoryStorage) persistObjectBody(obj *Object, referenced map[string]struct{}) error {
	ref := obj.effectiveRef()
	if ref == "" {
		return nil
	}

	referenced[ref] = struct{}{}

	if len(obj.Body) == 0 {
		return nil
	}

	return writeBlob(s.dataDir, ref, obj.Body)
}

// loadBodiesLocked prepares objects restored from the metadata snapshot. Blob
// bodies stay on disk and are loaded only when an operation needs their bytes.
func (s *MemoryStorage) loadBodiesLocked() error {
	for _, b := range s.Buckets {
		for _, obj := range b.Objects {
			if err := s.loadObjectBody(obj); err != nil {
				return err
			}
		}

		for _, versions := range b.Versions {
			for _, obj := range versions {
				if err := s.loadObjectBody(obj); err != nil {
					return err
				}
			}
		}
	}

	return nil
}

// loadObjectBody records the reference for a legacy inline body. Referenced
// blobs are intentionally not read here: doing so would make process RSS grow
// with all data stored on disk at every startup.
func (s *MemoryStorage) loadObjectBody(obj *Object) error {
	if obj.bodyRef == "" {
		if len(obj.Body) > 0 {
			ref := bodyRefOf(obj.Body)
			if err := writeBlob(s.dataDir, ref, obj.Body); err != nil {
				return err
			}

			obj.bodyRef = ref
			obj.Body = nil
		}

		return nil
	}

	return nil
}

// objectWithBody returns a shallow copy whose body is loaded from the blob
// store. The stored object remains metadata-only so a GET does not permanently
// increase the resident set.
func (s *MemoryStorage) objectWithBody(obj *Object) (*Object, error) {
	if s.dataDir == "" || obj.bodyRef == "" || len(obj.Body) > 0 {
		return obj, nil
	}

	body, err := readBlob(s.dataDir, obj.bodyRef)
	if err != nil {
		return nil, err
	}

	clone := *obj
	clone.Body = body

	return &clone, nil
}

// saveLocked persists the current state to disk while the caller holds the lock.
func (s *MemoryStorage) saveLocked() {
	if s.dataDir == "" {
		return
	}

	storage.ScheduleSave(s.dataDir, "s3", s.MarshalJSON)
}

// Close saves the storage state to disk if persistence is enabled.
func (s *MemoryStorage) Close() error {
	if s.dataDir == "" {
		return nil
	}

	if err := storage.Save(s.dataDir, "s3", s); err != nil {
		return fmt.Errorf("failed to save: %w", err)
	}

	return nil
}

// CreateBucket creates a new bucket.
func (s *MemoryStorage) CreateBucket(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	if _, exists := s.Buckets[name]; exists {
		return &BucketError{Code: "BucketAlreadyOwnedByYou", Message: "Your previous request to create the named bucket succeeded and you already own it.", BucketName: name}
	}

	s.Buckets[name] = &MemoryBucket{
		Name:             name,
		CreationDate:     time.Now(),
		Objects:          make(map[string]*Object),
		Versions:         make(map[string][]*Object),
		VersioningStatus: "",
		MultipartUploads: make(map[string]*MultipartUpload),
	}

	s.saveLocked()

	return nil
}

// DeleteBucket deletes a bucket.
func (s *MemoryStorage) DeleteBucket(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	bucket, exists := s.Buckets[name]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: name}
	}

	if len(bucket.Objects) > 0 {
		return &BucketError{Code: "BucketNotEmpty", Message: "The bucket you tried to delete is not empty", BucketName: name}
	}

	delete(s.Buckets, name)

	s.saveLocked()

	return nil
}

// ListBuckets returns all buckets.
func (s *MemoryStorage) ListBuckets(_ context.Context) ([]Bucket, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	buckets := make([]Bucket, 0, len(s.Buckets))
	for _, b := range s.Buckets {
		buckets = append(buckets, Bucket{
			Name:         b.Name,
			CreationDate: b.CreationDate,
		})
	}

	sort.Slice(buckets, func(i, j int) bool {
		return buckets[i].Name < buckets[j].Name
	})

	return buckets, nil
}

// BucketExists checks if a bucket exists.
func (s *MemoryStorage) BucketExists(_ context.Context, name string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	_, exists := s.Buckets[name]

	return exists, nil
}

// PutObject stores an object.
func (s *MemoryStorage) PutObject(ctx context.Context, bucket, key string, body io.Reader, metadata map[string]string) (*Object, error) {
	return s.PutObjectIf(ctx, bucket, key, body, metadata, PutCondition{})
}

// storedBody is a request body that has been materialized for storage: either
// streamed to its blob file (data dir configured) or kept in memory.
type storedBody struct {
	data    []byte
	bodyRef string
	etag    string
	size    int64
}

// materializeBody consumes body once. With a data dir it streams straight to
// the blob file so the bytes never accumulate in memory; without one it keeps
// the previous in-memory behaviour.
func (s *MemoryStorage) materializeBody(body io.Reader) (storedBody, error) {
	if s.dataDir != "" {
		blob, err := writeBlobStream(s.dataDir, body)
		if err != nil {
			return storedBody{}, err
		}

		return storedBody{bodyRef: blob.ref, etag: blob.etag, size: blob.size}, nil
	}

	data, err := io.ReadAll(body)
	if err != nil {
		return storedBody{}, fmt.Errorf("failed to read body: %w", err)
	}

	hash := md5.Sum(data) //nolint:gosec // MD5 is required for S3 ETag calculation per AWS specification

	return storedBody{
		data:    data,
		bodyRef: bodyRefOf(data),
		etag:    hex.EncodeToString(hash[:]),
		size:    int64(len(data)),
	}, nil
}

// PutObjectIf implements Storage.PutObjectIf. The precondition check
// happens under the same lock as the insert below, so it is atomic with
// the write: two concurrent conditional PUTs can't both observe "no
// current object" and both succeed.
func (s *MemoryStorage) PutObjectIf(_ context.Context, bucket, key string, body io.Reader, metadata map[string]string, cond PutCondition) (*Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if err := checkPutCondition(b, key, cond); err != nil {
		return nil, err
	}

	stored, err := s.materializeBody(body)
	if err != nil {
		return nil, err
	}

	data, bodyRef, etag, size := stored.data, stored.bodyRef, stored.etag, stored.size

	obj := &Object{
		Key:          key,
		Body:         data,
		bodyRef:      bodyRef,
		ETag:         fmt.Sprintf("%q", etag),
		Size:         size,
		LastModified: time.Now(),
		Metadata:     metadata,
	}

	if metadata != nil {
		if ct, ok := metadata["Content-Type"]; ok {
			obj.ContentType = ct
		}

		applySSEMetadata(obj, metadata)
	}

	if obj.ContentType == "" {
		obj.ContentType = "application/octet-stream"
	}

	putObjectVersion(b, key, obj)

	b.Objects[key] = obj

	s.saveLocked()

	return obj, nil
}

// putObjectVersion handles versioning for a newly stored object.
func putObjectVersion(b *MemoryBucket, key string, obj *Object) {
	switch b.VersioningStatus {
	case VersioningEnabled:
		b.VersionIDCounter++
		obj.VersionID = fmt.Sprintf("v%d", b.VersionIDCounter)

		// Prepend to versions list (newest first)
		b.Versions[key] = append([]*Object{obj}, b.Versions[key]...)
	case VersioningSuspended:
		// For suspended versioning, use "null" version ID
		obj.VersionID = VersionIDNull

		versions := b.Versions[key]
		newVersions := make([]*Object, 0, len(versions))

		for _, v := range versions {
			if v.VersionID != VersionIDNull {
				newVersions = append(newVersions, v)
			}
		}

		b.Versions[key] = append([]*Object{obj}, newVersions...)
	}
}

// applySSEMetadata extracts SSE headers from metadata and sets them on the object.
func applySSEMetadata(obj *Object, metadata map[string]string) {
	obj.ServerSideEncryption = metadata["x-amz-server-side-encryption"]
	delete(metadata, "x-amz-server-side-encryption")

	obj.SSEKMSKeyID = metadata["x-amz-server-side-encryption-aws-kms-key-id"]
	delete(metadata, "x-amz-server-side-encryption-aws-kms-key-id")
}

// GetObject retrieves an object.
func (s *MemoryStorage) GetObject(_ context.Context, bucket, key string) (*Object, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	obj, exists := b.Objects[key]
	if !exists {
		return nil, &ObjectError{Code: errCodeNoSuchKey, Message: msgKeyNotExist, Key: key}
	}

	if obj.IsDeleteMarker {
		return nil, &ObjectError{Code: errCodeNoSuchKey, Message: msgKeyNotExist, Key: key}
	}

	return s.objectWithBody(obj)
}

// GetObjectVersion retrieves a specific version of an object.
func (s *MemoryStorage) GetObjectVersion(_ context.Context, bucket, key, versionID string) (*Object, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	versions := b.Versions[key]
	for _, obj := range versions {
		if obj.VersionID == versionID {
			if obj.IsDeleteMarker {
				return nil, &ObjectError{Code: "MethodNotAllowed", Message: "The specified method is not allowed against this resource.", Key: key}
			}

			return s.objectWithBody(obj)
		}
	}

	return nil, &ObjectError{Code: "NoSuchVersion", Message: "The specified version does not exist.", Key: key}
}

// PutObjectTagging sets tags on an object.
func (s *MemoryStorage) PutObjectTagging(_ context.Context, bucket, key string, tags map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	bd, exists := s.Buckets[bucket]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist}
	}

	obj, exists := bd.Objects[key]
	if !exists {
		return &BucketError{Code: errCodeNoSuchKey, Message: msgKeyNotExist}
	}

	obj.Tags = tags
	bd.Objects[key] = obj

	s.saveLocked()

	return nil
}

// GetObjectTagging retrieves tags from an object.
func (s *MemoryStorage) GetObjectTagging(_ context.Context, bucket, key string) (map[string]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	bd, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist}
	}

	obj, exists := bd.Objects[key]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchKey, Message: msgKeyNotExist}
	}

	if obj.Tags == nil {
		return map[string]string{}, nil
	}

	return obj.Tags, nil
}

// PutBucketTagging replaces a bucket's tag set. Real S3 keeps at most 50 tags
// per bucket; kumo stores whatever it is given, like the object tagging path.
func (s *MemoryStorage) PutBucketTagging(_ context.Context, bucket string, tags map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	// An empty tag set means "no tag set configured": real S3 reports
	// NoSuchTagSet after such a request rather than an empty Tagging document.
	if len(tags) == 0 {
		b.Tags = nil
	} else {
		b.Tags = tags
	}

	s.saveLocked()

	return nil
}

// GetBucketTagging retrieves the tags of a bucket.
func (s *MemoryStorage) GetBucketTagging(_ context.Context, bucket string) (map[string]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if b.Tags == nil {
		return map[string]string{}, nil
	}

	return b.Tags, nil
}

// DeleteBucketTagging removes a bucket's tag set. Real S3 answers 204 whether or
// not a tag set was configured, so this is idempotent.
func (s *MemoryStorage) DeleteBucketTagging(_ context.Context, bucket string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	b.Tags = nil

	s.saveLocked()

	return nil
}

// DeleteObject deletes an object.
// Returns the deleted object (or delete marker for versioned buckets), or nil if non-versioned delete.
func (s *MemoryStorage) DeleteObject(_ context.Context, bucket, key string) (*Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if b.VersioningStatus == VersioningEnabled {
		b.VersionIDCounter++
		deleteMarker := &Object{
			Key:            key,
			VersionID:      fmt.Sprintf("v%d", b.VersionIDCounter),
			IsDeleteMarker: true,
			LastModified:   time.Now(),
		}

		b.Versions[key] = append([]*Object{deleteMarker}, b.Versions[key]...)
		b.Objects[key] = deleteMarker

		s.saveLocked()

		return deleteMarker, nil
	}

	// For non-versioned or suspended buckets, just delete
	delete(b.Objects, key)

	// For suspended buckets, also remove "null" version
	if b.VersioningStatus == VersioningSuspended {
		versions := b.Versions[key]
		newVersions := make([]*Object, 0, len(versions))

		for _, v := range versions {
			if v.VersionID != VersionIDNull {
				newVersions = append(newVersions, v)
			}
		}

		if len(newVersions) == 0 {
			delete(b.Versions, key)
		} else {
			b.Versions[key] = newVersions
		}
	}

	s.saveLocked()

	// Return empty object for non-versioned delete (S3 returns 204 with no body)
	return &Object{Key: key}, nil
}

// DeleteObjectVersion deletes a specific version of an object.
func (s *MemoryStorage) DeleteObjectVersion(_ context.Context, bucket, key, versionID string) (*Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	versions := b.Versions[key]
	deletedObj, newVersions := filterOutVersion(versions, versionID)

	// S3 doesn't return error if version doesn't exist, returns empty object
	if deletedObj == nil {
		return &Object{Key: key, VersionID: versionID}, nil
	}

	if len(newVersions) == 0 {
		delete(b.Versions, key)
		delete(b.Objects, key)
	} else {
		b.Versions[key] = newVersions
		// Update current object to the newest version
		b.Objects[key] = newVersions[0]
	}

	s.saveLocked()

	return deletedObj, nil
}

// filterOutVersion removes a specific version from the versions list.
func filterOutVersion(versions []*Object, versionID string) (*Object, []*Object) {
	var deletedObj *Object

	newVersions := make([]*Object, 0, len(versions))

	for _, v := range versions {
		if v.VersionID == versionID {
			deletedObj = v
		} else {
			newVersions = append(newVersions, v)
		}
	}

	return deletedObj, newVersions
}

// HeadObject retrieves object metadata without body.
func (s *MemoryStorage) HeadObject(_ context.Context, bucket, key string) (*Object, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	obj, exists := b.Objects[key]
	if !exists {
		return nil, &ObjectError{Code: errCodeNoSuchKey, Message: msgKeyNotExist, Key: key}
	}

	return &Object{
		Key:                  obj.Key,
		ContentType:          obj.ContentType,
		ETag:                 obj.ETag,
		Size:                 obj.Size,
		LastModified:         obj.LastModified,
		Metadata:             obj.Metadata,
		VersionID:            obj.VersionID,
		ServerSideEncryption: obj.ServerSideEncryption,
		SSEKMSKeyID:          obj.SSEKMSKeyID,
	}, nil
}

// ListObjects lists objects in a bucket.
func (s *MemoryStorage) ListObjects(_ context.Context, bucket, prefix, delimiter string, maxKeys int) ([]Object, []string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if maxKeys <= 0 {
		maxKeys = 1000
	}

	objects := make([]Object, 0)
	commonPrefixes := make(map[string]bool)

	keys := make([]string, 0, len(b.Objects))

	for key := range b.Objects {
		if prefix == "" || strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
	}

	sort.Strings(keys)

	for _, key := range keys {
		obj := b.Objects[key]

		// Handle delimiter
		if delimiter != "" {
			remainder := strings.TrimPrefix(key, prefix)
			if idx := strings.Index(remainder, delimiter); idx >= 0 {
				commonPrefix := prefix + remainder[:idx+len(delimiter)]
				commonPrefixes[commonPrefix] = true

				continue
			}
		}

		objects = append(objects, Object{
			Key:          obj.Key,
			ETag:         obj.ETag,
			Size:         obj.Size,
			LastModified: obj.LastModified,
		})

		if len(objects) >= maxKeys {
			break
		}
	}

	prefixList := make([]string, 0, len(commonPrefixes))
	for p := range commonPrefixes {
		prefixList = append(prefixList, p)
	}

	sort.Strings(prefixList)

	return objects, prefixList, nil
}

// PutBucketVersioning sets the versioning status of a bucket.
func (s *MemoryStorage) PutBucketVersioning(_ context.Context, bucket, status string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if status != VersioningEnabled && status != VersioningSuspended && status != "" {
		return &BucketError{Code: errCodeMalformedXML, Message: "Invalid versioning status", BucketName: bucket}
	}

	b.VersioningStatus = status

	s.saveLocked()

	return nil
}

// GetBucketVersioning returns the versioning status of a bucket.
func (s *MemoryStorage) GetBucketVersioning(_ context.Context, bucket string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return "", &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	return b.VersioningStatus, nil
}

// ListObjectVersions lists all versions of objects in a bucket.
func (s *MemoryStorage) ListObjectVersions(_ context.Context, bucket, prefix, delimiter string, maxKeys int) ([]Object, []string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if maxKeys <= 0 {
		maxKeys = 1000
	}

	keys := collectVersionKeys(b, prefix)
	sort.Strings(keys)

	objects, commonPrefixes := processVersionKeys(b, keys, prefix, delimiter, maxKeys)
	prefixList := sortedPrefixList(commonPrefixes)

	return objects, prefixList, nil
}

// collectVersionKeys collects all keys that match the prefix from both versions and objects maps.
func collectVersionKeys(b *MemoryBucket, prefix string) []string {
	keySet := make(map[string]bool)

	for key := range b.Versions {
		if prefix == "" || strings.HasPrefix(key, prefix) {
			keySet[key] = true
		}
	}

	for key := range b.Objects {
		if prefix == "" || strings.HasPrefix(key, prefix) {
			keySet[key] = true
		}
	}

	keys := make([]string, 0, len(keySet))
	for key := range keySet {
		keys = append(keys, key)
	}

	return keys
}

// processVersionKeys processes keys and returns objects and common prefixes.
func processVersionKeys(b *MemoryBucket, keys []string, prefix, delimiter string, maxKeys int) ([]Object, map[string]bool) {
	objects := make([]Object, 0)
	commonPrefixes := make(map[string]bool)
	count := 0

	for _, key := range keys {
		if count >= maxKeys {
			break
		}

		if delimiter != "" {
			if cp := extractCommonPrefix(key, prefix, delimiter); cp != "" {
				commonPrefixes[cp] = true

				continue
			}
		}

		added := addKeyVersions(b, key, &objects, maxKeys-count)
		count += added
	}

	return objects, commonPrefixes
}

// extractCommonPrefix extracts common prefix if delimiter is found.
func extractCommonPrefix(key, prefix, delimiter string) string {
	remainder := strings.TrimPrefix(key, prefix)
	if idx := strings.Index(remainder, delimiter); idx >= 0 {
		return prefix + remainder[:idx+len(delimiter)]
	}

	return ""
}

// addKeyVersions adds all versions of a key to the objects slice.
func addKeyVersions(b *MemoryBucket, key string, objects *[]Object, limit int) int {
	versions := b.Versions[key]
	if len(versions) == 0 {
		if obj, exists := b.Objects[key]; exists {
			*objects = append(*objects, objectToVersionInfo(obj))

			return 1
		}

		return 0
	}

	count := 0

	for _, obj := range versions {
		if count >= limit {
			break
		}

		*objects = append(*objects, objectToVersionInfo(obj))
		count++
	}

	return count
}

// objectToVersionInfo converts an Object to version info format.
func objectToVersionInfo(obj *Object) Object {
	return Object{
		Key:            obj.Key,
		VersionID:      obj.VersionID,
		ETag:           obj.ETag,
		Size:           obj.Size,
		LastModified:   obj.LastModified,
		IsDeleteMarker: obj.IsDeleteMarker,
	}
}

// sortedPrefixList converts a map of prefixes to a sorted slice.
func sortedPrefixList(prefixes map[string]bool) []string {
	list := make([]string, 0, len(prefixes))
	for p := range prefixes {
		list = append(list, p)
	}

	sort.Strings(list)

	return list
}

// BucketError represents an S3 bucket error.
type BucketError struct {
	Code       string
	Message    string
	BucketName string
}

func (e *BucketError) Error() string {
	return fmt.Sprintf("%s: %s (bucket: %s)", e.Code, e.Message, e.BucketName)
}

// ObjectError represents an S3 object error.
type ObjectError struct {
	Code    string
	Message string
	Key     string
}

func (e *ObjectError) Error() string {
	return fmt.Sprintf("%s: %s (key: %s)", e.Code, e.Message, e.Key)
}

// MultipartError represents an S3 multipart upload error.
type MultipartError struct {
	Code     string
	Message  string
	UploadID string
}

func (e *MultipartError) Error() string {
	return fmt.Sprintf("%s: %s (uploadId: %s)", e.Code, e.Message, e.UploadID)
}

// CreateMultipartUpload creates a new multipart upload.
func (s *MemoryStorage) CreateMultipartUpload(_ context.Context, bucket, key string, metadata map[string]string) (*MultipartUpload, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	uploadID := generateUploadID()
	upload := &MultipartUpload{
		Bucket:    bucket,
		Key:       key,
		UploadID:  uploadID,
		Initiated: time.Now(),
		Parts:     make(map[int]*Part),
		Metadata:  metadata,
	}

	b.MultipartUploads[uploadID] = upload

	s.saveLocked()

	return upload, nil
}

// UploadPart uploads a part of a multipart upload.
func (s *MemoryStorage) UploadPart(_ context.Context, bucket, key, uploadID string, partNumber int, body io.Reader) (*Part, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	upload, exists := b.MultipartUploads[uploadID]
	if !exists {
		return nil, &MultipartError{Code: errCodeNoSuchUpload, Message: msgUploadNotExist, UploadID: uploadID}
	}

	if upload.Key != key {
		return nil, &MultipartError{Code: errCodeNoSuchUpload, Message: msgUploadNotExist, UploadID: uploadID}
	}

	stored, err := s.materializeBody(body)
	if err != nil {
		return nil, err
	}

	data, bodyRef, etag, size := stored.data, stored.bodyRef, stored.etag, stored.size

	part := &Part{
		PartNumber:   partNumber,
		ETag:         fmt.Sprintf("%q", etag),
		Size:         size,
		LastModified: time.Now(),
		Body:         data,
		bodyRef:      bodyRef,
	}

	upload.Parts[partNumber] = part

	s.saveLocked()

	return part, nil
}

// UploadPartCopy copies bytes from an existing object into a part of an
// in-progress multipart upload. RFC-equivalent: AWS S3 UploadPartCopy.
// `copyRange` may be nil to copy the entire source object.
func (s *MemoryStorage) UploadPartCopy(_ context.Context, dstBucket, dstKey, uploadID string, partNumber int, srcBucket, srcKey, srcVersionID string, copyRange *CopyRange) (*Part, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	srcObj, err := s.objectForCopySourceLocked(srcBucket, srcKey, srcVersionID)
	if err != nil {
		return nil, err
	}

	dstB, exists := s.Buckets[dstBucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: dstBucket}
	}

	upload, exists := dstB.MultipartUploads[uploadID]
	if !exists || upload.Key != dstKey {
		return nil, &MultipartError{Code: errCodeNoSuchUpload, Message: msgUploadNotExist, UploadID: uploadID}
	}

	hydratedSrc, err := s.objectWithBody(srcObj)
	if err != nil {
		return nil, err
	}

	data := hydratedSrc.Body
	if copyRange != nil {
		size := int64(len(data))
		if copyRange.Start < 0 || copyRange.End >= size || copyRange.Start > copyRange.End {
			return nil, &MultipartError{Code: "InvalidArgument", Message: "Range out of source object bounds", UploadID: uploadID}
		}

		data = data[copyRange.Start : copyRange.End+1]
	}

	stored, err := s.materializeBody(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}

	partBody, bodyRef, etag, size := stored.data, stored.bodyRef, stored.etag, stored.size

	part := &Part{
		PartNumber:   partNumber,
		ETag:         fmt.Sprintf("%q", etag),
		Size:         size,
		LastModified: time.Now(),
		Body:         partBody,
		bodyRef:      bodyRef,
	}

	upload.Parts[partNumber] = part

	s.saveLocked()

	return part, nil
}

func (s *MemoryStorage) objectForCopySourceLocked(bucket, key, versionID string) (*Object, error) {
	srcB, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if versionID == "" {
		srcObj, exists := srcB.Objects[key]
		if !exists || srcObj.IsDeleteMarker {
			return nil, &ObjectError{Code: errCodeNoSuchKey, Message: msgKeyNotExist, Key: key}
		}

		return srcObj, nil
	}

	for _, obj := range srcB.Versions[key] {
		if obj.VersionID != versionID {
			continue
		}

		if obj.IsDeleteMarker {
			return nil, &ObjectError{Code: "MethodNotAllowed", Message: "The specified method is not allowed against this resource.", Key: key}
		}

		return obj, nil
	}

	return nil, &ObjectError{Code: "NoSuchVersion", Message: "The specified version does not exist.", Key: key}
}

// CompleteMultipartUpload completes a multipart upload by assembling parts.
func (s *MemoryStorage) CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []PartRequest) (*Object, error) {
	return s.CompleteMultipartUploadIf(ctx, bucket, key, uploadID, parts, PutCondition{})
}

// CompleteMultipartUploadIf implements Storage.CompleteMultipartUploadIf.
// Like PutObjectIf, the precondition check runs under the same lock as
// the insert, and on failure the in-progress upload is left untouched
// (it's deleted only after a successful complete) so the caller can
// retry.
func (s *MemoryStorage) CompleteMultipartUploadIf(_ context.Context, bucket, key, uploadID string, parts []PartRequest, cond PutCondition) (*Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	upload, exists := b.MultipartUploads[uploadID]
	if !exists {
		return nil, &MultipartError{Code: errCodeNoSuchUpload, Message: msgUploadNotExist, UploadID: uploadID}
	}

	if upload.Key != key {
		return nil, &MultipartError{Code: errCodeNoSuchUpload, Message: msgUploadNotExist, UploadID: uploadID}
	}

	if err := checkPutCondition(b, key, cond); err != nil {
		return nil, err
	}

	selectedParts, err := validateMultipartParts(upload, parts, uploadID)
	if err != nil {
		return nil, err
	}

	var combinedBody []byte

	combinedBody, bodyRef, size, err := s.combineParts(selectedParts, combinedBody)
	if err != nil {
		return nil, err
	}

	etag := calculateMultipartETag(parts, upload.Parts)

	obj := &Object{
		Key:          key,
		Body:         combinedBody,
		bodyRef:      bodyRef,
		ETag:         etag,
		Size:         size,
		LastModified: time.Now(),
		ContentType:  "application/octet-stream",
	}

	applyMultipartUploadMetadata(obj, upload.Metadata)

	putObjectVersion(b, key, obj)

	b.Objects[key] = obj
	delete(b.MultipartUploads, uploadID)

	s.saveLocked()

	return obj, nil
}

// combineParts produces the completed object's body. With a data dir the part
// blobs are concatenated into a new blob file through a streaming reader, so
// the assembled object never exists in memory; without one the parts are
// appended as before.
func (s *MemoryStorage) combineParts(selectedParts []*Part, combinedBody []byte) ([]byte, string, int64, error) {
	if s.dataDir == "" {
		for _, part := range selectedParts {
			combinedBody = append(combinedBody, part.Body...)
		}

		return combinedBody, bodyRefOf(combinedBody), int64(len(combinedBody)), nil
	}

	refs := make([]string, 0, len(selectedParts))
	for _, part := range selectedParts {
		refs = append(refs, part.bodyRef)
	}

	reader := &blobSequenceReader{dataDir: s.dataDir, refs: refs}

	blob, streamErr := writeBlobStream(s.dataDir, reader)

	closeErr := reader.Close()

	if streamErr != nil {
		return nil, "", 0, streamErr
	}

	if closeErr != nil {
		return nil, "", 0, closeErr
	}

	return nil, blob.ref, blob.size, nil
}

func validateMultipartParts(upload *MultipartUpload, parts []PartRequest, uploadID string) ([]*Part, error) {
	if len(parts) == 0 {
		return nil, &MultipartError{Code: errCodeMalformedXML, Message: "CompleteMultipartUpload requires at least one part", UploadID: uploadID}
	}

	selectedParts := make([]*Part, 0, len(parts))

	previousPartNumber := 0

	for _, pr := range parts {
		if pr.PartNumber <= previousPartNumber {
			return nil, &MultipartError{Code: "InvalidPartOrder", Message: "The list of parts was not in ascending order. Parts must be ordered by part number.", UploadID: uploadID}
		}

		previousPartNumber = pr.PartNumber

		part, ok := upload.Parts[pr.PartNumber]
		if !ok {
			return nil, &MultipartError{Code: errCodeInvalidPart, Message: "One or more of the specified parts could not be found", UploadID: uploadID}
		}

		if part.ETag != pr.ETag && part.ETag != fmt.Sprintf("%q", strings.Trim(pr.ETag, "\"")) {
			return nil, &MultipartError{Code: errCodeInvalidPart, Message: "One or more of the specified parts could not be found", UploadID: uploadID}
		}

		selectedParts = append(selectedParts, part)
	}

	return selectedParts, nil
}

// applyMultipartUploadMetadata carries the Content-Type, user metadata, and
// SSE headers captured at CreateMultipartUpload time onto the completed
// object, mirroring PutObject's metadata/SSE handling. Operates on a clone
// of upload.Metadata since applySSEMetadata mutates its argument and
// CompleteMultipartUpload can in principle be retried.
func applyMultipartUploadMetadata(obj *Object, metadata map[string]string) {
	if metadata == nil {
		return
	}

	m := cloneStringMap(metadata)
	obj.Metadata = m

	if ct, ok := m["Content-Type"]; ok {
		obj.ContentType = ct
	}

	applySSEMetadata(obj, m)
}

// AbortMultipartUpload aborts a multipart upload.
func (s *MemoryStorage) AbortMultipartUpload(_ context.Context, bucket, key, uploadID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	upload, exists := b.MultipartUploads[uploadID]
	if !exists {
		return &MultipartError{Code: errCodeNoSuchUpload, Message: msgUploadNotExist, UploadID: uploadID}
	}

	if upload.Key != key {
		return &MultipartError{Code: errCodeNoSuchUpload, Message: msgUploadNotExist, UploadID: uploadID}
	}

	delete(b.MultipartUploads, uploadID)

	s.saveLocked()

	return nil
}

// ListMultipartUploads lists in-progress multipart uploads.
func (s *MemoryStorage) ListMultipartUploads(_ context.Context, bucket, prefix string, maxUploads int) ([]*MultipartUpload, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if maxUploads <= 0 {
		maxUploads = 1000
	}

	uploads := make([]*MultipartUpload, 0)

	for _, upload := range b.MultipartUploads {
		if prefix == "" || strings.HasPrefix(upload.Key, prefix) {
			uploads = append(uploads, upload)
		}

		if len(uploads) >= maxUploads {
			break
		}
	}

	sort.Slice(uploads, func(i, j int) bool {
		if uploads[i].Key != uploads[j].Key {
			return uploads[i].Key < uploads[j].Key
		}

		return uploads[i].UploadID < uploads[j].UploadID
	})

	return uploads, nil
}

// ListParts lists the parts that have been uploaded for a multipart upload.
func (s *MemoryStorage) ListParts(_ context.Context, bucket, key, uploadID string, maxParts int) ([]*Part, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	upload, exists := b.MultipartUploads[uploadID]
	if !exists {
		return nil, &MultipartError{Code: errCodeNoSuchUpload, Message: msgUploadNotExist, UploadID: uploadID}
	}

	if upload.Key != key {
		return nil, &MultipartError{Code: errCodeNoSuchUpload, Message: msgUploadNotExist, UploadID: uploadID}
	}

	if maxParts <= 0 {
		maxParts = 1000
	}

	parts := make([]*Part, 0, len(upload.Parts))
	for _, part := range upload.Parts {
		parts = append(parts, part)
	}

	sort.Slice(parts, func(i, j int) bool {
		return parts[i].PartNumber < parts[j].PartNumber
	})

	if len(parts) > maxParts {
		parts = parts[:maxParts]
	}

	return parts, nil
}

// generateUploadID generates a unique upload ID.
func generateUploadID() string {
	return randomHex(16)
}

// randomHex returns n cryptographically random bytes encoded as 2n hex characters.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)

	return hex.EncodeToString(b)
}

// calculateMultipartETag calculates the ETag for a completed multipart upload.
// Format: "MD5-of-MD5s-N" where N is the number of parts.
func calculateMultipartETag(partRequests []PartRequest, parts map[int]*Part) string {
	const md5Size = 16 // MD5 produces 16 bytes

	md5Concat := make([]byte, 0, len(partRequests)*md5Size)

	for _, pr := range partRequests {
		part := parts[pr.PartNumber]
		etag := strings.Trim(part.ETag, "\"")

		md5Bytes, _ := hex.DecodeString(etag)
		md5Concat = append(md5Concat, md5Bytes...)
	}

	finalHash := md5.Sum(md5Concat) //nolint:gosec // MD5 is required for S3 ETag calculation per AWS specification

	return fmt.Sprintf("%q", fmt.Sprintf("%s-%d", hex.EncodeToString(finalHash[:]), len(partRequests)))
}

// SetEventBridgeNotification enables or disables EventBridge notification for a bucket.
func (s *MemoryStorage) SetEventBridgeNotification(_ context.Context, bucket string, enabled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if b, exists := s.Buckets[bucket]; exists {
		b.EventBridgeEnabled = enabled
	}

	s.saveLocked()
}

// IsEventBridgeEnabled returns whether EventBridge notification is enabled for a bucket.
func (s *MemoryStorage) IsEventBridgeEnabled(_ context.Context, bucket string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()

	if b, exists := s.Buckets[bucket]; exists {
		return b.EventBridgeEnabled
	}

	return false
}

// SetQueueConfigurations stores the SQS queue notification destinations for a bucket.
func (s *MemoryStorage) SetQueueConfigurations(_ context.Context, bucket string, configs []QueueConfiguration) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if b, exists := s.Buckets[bucket]; exists {
		b.QueueConfigurations = configs
	}

	s.saveLocked()
}

// GetQueueConfigurations returns the SQS queue notification destinations for a bucket.
func (s *MemoryStorage) GetQueueConfigurations(_ context.Context, bucket string) []QueueConfiguration {
	s.mu.RLock()
	defer s.mu.RUnlock()

	if b, exists := s.Buckets[bucket]; exists {
		return b.QueueConfigurations
	}

	return nil
}

// SetLambdaConfigurations stores the Lambda notification destinations for a bucket.
func (s *MemoryStorage) SetLambdaConfigurations(_ context.Context, bucket string, configs []LambdaFunctionConfiguration) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if b, exists := s.Buckets[bucket]; exists {
		b.LambdaConfigurations = configs
	}

	s.saveLocked()
}

// GetLambdaConfigurations returns the Lambda notification destinations for a bucket.
func (s *MemoryStorage) GetLambdaConfigurations(_ context.Context, bucket string) []LambdaFunctionConfiguration {
	s.mu.RLock()
	defer s.mu.RUnlock()

	if b, exists := s.Buckets[bucket]; exists {
		return append([]LambdaFunctionConfiguration(nil), b.LambdaConfigurations...)
	}

	return nil
}

// SetTopicConfigurations stores the SNS topic notification destinations for a bucket.
func (s *MemoryStorage) SetTopicConfigurations(_ context.Context, bucket string, configs []TopicConfiguration) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if b, exists := s.Buckets[bucket]; exists {
		b.TopicConfigurations = configs
	}

	s.saveLocked()
}

// GetTopicConfigurations returns the SNS topic notification destinations for a bucket.
func (s *MemoryStorage) GetTopicConfigurations(_ context.Context, bucket string) []TopicConfiguration {
	s.mu.RLock()
	defer s.mu.RUnlock()

	if b, exists := s.Buckets[bucket]; exists {
		return append([]TopicConfiguration(nil), b.TopicConfigurations...)
	}

	return nil
}

// SetCORSConfiguration sets the CORS configuration for a bucket.
func (s *MemoryStorage) SetCORSConfiguration(_ context.Context, bucket string, rules []CORSRule) {
	s.mu.Lock()
	defer s.mu.Unlock()

	if b, exists := s.Buckets[bucket]; exists {
		b.CORSRules = rules
	}

	s.saveLocked()
}

// GetCORSRules returns the CORS rules for a bucket.
func (s *MemoryStorage) GetCORSRules(_ context.Context, bucket string) []CORSRule {
	s.mu.RLock()
	defer s.mu.RUnlock()

	if b, exists := s.Buckets[bucket]; exists {
		return b.CORSRules
	}

	return nil
}

// PutPublicAccessBlock stores a bucket's public access block configuration.
func (s *MemoryStorage) PutPublicAccessBlock(_ context.Context, bucket string, cfg PublicAccessBlockConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	c := cfg
	b.PublicAccessBlock = &c

	s.saveLocked()

	return nil
}

// GetPublicAccessBlock returns a bucket's public access block configuration.
func (s *MemoryStorage) GetPublicAccessBlock(_ context.Context, bucket string) (*PublicAccessBlockConfig, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if b.PublicAccessBlock == nil {
		return nil, &BucketError{
			Code:       "NoSuchPublicAccessBlockConfiguration",
			Message:    "The public access block configuration was not found",
			BucketName: bucket,
		}
	}

	c := *b.PublicAccessBlock

	return &c, nil
}

// DeletePublicAccessBlock removes a bucket's public access block configuration.
func (s *MemoryStorage) DeletePublicAccessBlock(_ context.Context, bucket string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	b.PublicAccessBlock = nil

	s.saveLocked()

	return nil
}

// PutBucketEncryption stores a bucket's server-side encryption configuration.
func (s *MemoryStorage) PutBucketEncryption(_ context.Context, bucket string, cfg ServerSideEncryptionConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	c := ServerSideEncryptionConfig{Rules: append([]ServerSideEncryptionRule(nil), cfg.Rules...)}
	b.Encryption = &c

	s.saveLocked()

	return nil
}

// GetBucketEncryption returns a bucket's server-side encryption configuration.
func (s *MemoryStorage) GetBucketEncryption(_ context.Context, bucket string) (*ServerSideEncryptionConfig, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if b.Encryption == nil {
		return nil, &BucketError{
			Code:       "ServerSideEncryptionConfigurationNotFoundError",
			Message:    "The server side encryption configuration was not found",
			BucketName: bucket,
		}
	}

	c := ServerSideEncryptionConfig{Rules: append([]ServerSideEncryptionRule(nil), b.Encryption.Rules...)}

	return &c, nil
}

// DeleteBucketEncryption removes a bucket's server-side encryption configuration.
func (s *MemoryStorage) DeleteBucketEncryption(_ context.Context, bucket string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	b.Encryption = nil

	s.saveLocked()

	return nil
}

// PutBucketPolicy stores a bucket's policy document. AWS treats the
// document as opaque JSON for the purposes of Put/Get, so we just
// persist the bytes — IAM-layer evaluation is out of scope.
func (s *MemoryStorage) PutBucketPolicy(_ context.Context, bucket, document string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	b.Policy = document

	s.saveLocked()

	return nil
}

// GetBucketPolicy returns the configured policy document. Returns
// NoSuchBucketPolicy when the bucket exists but has no policy set.
func (s *MemoryStorage) GetBucketPolicy(_ context.Context, bucket string) (string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return "", &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if b.Policy == "" {
		return "", &BucketError{
			Code:       "NoSuchBucketPolicy",
			Message:    "The bucket policy does not exist",
			BucketName: bucket,
		}
	}

	return b.Policy, nil
}

// DeleteBucketPolicy clears the bucket's policy. AWS allows this on a
// bucket without a policy (returns 204), so a missing policy is not
// an error here either.
func (s *MemoryStorage) DeleteBucketPolicy(_ context.Context, bucket string) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	b.Policy = ""

	s.saveLocked()

	return nil
}

// PutBucketLogging stores the server-access-log destination for a
// bucket. An empty TargetBucket means the caller is opting out, so we
// clear the config (matches AWS semantics where an empty
// BucketLoggingStatus body disables logging).
func (s *MemoryStorage) PutBucketLogging(_ context.Context, bucket string, cfg BucketLoggingConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if cfg.TargetBucket == "" {
		b.Logging = nil

		s.saveLocked()

		return nil
	}

	c := cfg
	b.Logging = &c

	s.saveLocked()

	return nil
}

// GetBucketLogging returns the configured destination, or nil when
// logging is disabled. Real AWS GET on an unconfigured bucket returns
// an empty <BucketLoggingStatus/> rather than NoSuch*; the handler
// renders that case from a nil result.
func (s *MemoryStorage) GetBucketLogging(_ context.Context, bucket string) (*BucketLoggingConfig, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()

	b, exists := s.Buckets[bucket]
	if !exists {
		return nil, &BucketError{Code: errCodeNoSuchBucket, Message: msgBucketNotExist, BucketName: bucket}
	}

	if b.Logging == nil {
		return nil, nil //nolint:nilnil // documented contract: nil cfg + nil err == disabled
	}

	c := *b.Logging

	return &c, nil
}
