;; kv: a key-value store over the database's keys.
;;
;; Reducers (integers are little-endian; keys and values are any bytes):
;;
;;   put     args: u32 key_len, key, value (the rest of the arguments)
;;           sets the key; result: empty
;;   get     args: key (all of the arguments)
;;           result: the value; fails with -1 if the key is absent
;;   delete  args: key
;;           removes the key; result: 1 byte, 1 if the key existed, else 0
;;   scan    args: u32 start_len, start key, u32 limit
;;           result: up to `limit` entries whose keys are >= the start key, in key order,
;;           each as [u32 key_len][key][u32 value_len][value], back to back
;;
;; Failure codes (each with a message through `fail`):
;;
;;   -1  get: the key is absent
;;   -3  malformed arguments: a length field that does not match the arguments' size
(module
  (import "corelane" "get" (func $host_get (param i32 i32 i32 i32) (result i32)))
  (import "corelane" "put" (func $host_put (param i32 i32 i32 i32)))
  (import "corelane" "delete" (func $host_delete (param i32 i32) (result i32)))
  (import "corelane" "scan" (func $host_scan (param i32 i32 i32 i32) (result i32)))
  (import "corelane" "fail" (func $host_fail (param i32 i32)))

  (memory (export "memory") 1)

  ;; Constant data: the failure messages.
  (data (i32.const 16) "kv.get: no such key")
  (data (i32.const 48) "kv.put: the arguments must be [u32 key_len][key][value]")
  (data (i32.const 112) "kv.scan: the arguments must be [u32 start_len][start][u32 limit]")

  ;; ---- The heap: a bump allocator, the same in every sample ----
  ;;
  ;; Memory layout: [0, 1024) is kept for constant data (the data segments above, if any),
  ;; and the heap is [$heap_base = 1024, end of memory); the memory grows when the heap needs
  ;; more.
  ;;
  ;; 1. corelane_alloc(len) starts a fresh heap at $heap_base and returns the arguments'
  ;;    buffer from it. The host calls it at most once per call, before the reducer.
  ;; 2. Every reducer first calls $reset_heap, which moves the heap to just past its
  ;;    arguments (to $heap_base when there are none): nothing of an earlier call is kept,
  ;;    and the arguments are never handed out again.
  ;; 3. $alloc hands out 8-aligned blocks at or above $heap_base, so the heap never overlaps
  ;;    the constant data. It traps rather than reach 2 GiB, so every result pointer is below
  ;;    2^31 and a packed success result is never negative.

  (global $heap_base i32 (i32.const 1024))
  (global $heap_next (mut i32) (i32.const 1024))

  (func (export "corelane_alloc") (param $len i32) (result i32)
    ;; Step 1: a call begins.
    (global.set $heap_next (global.get $heap_base))
    (call $alloc (local.get $len)))

  (func $reset_heap (param $args_ptr i32) (param $args_len i32)
    (local $args_end i32)
    ;; Step 2: with no arguments, args_ptr and args_len are 0 and the heap restarts at its base.
    (local.set $args_end (i32.add (local.get $args_ptr) (local.get $args_len)))
    (global.set $heap_next
      (select
        (local.get $args_end)
        (global.get $heap_base)
        (i32.gt_u (local.get $args_end) (global.get $heap_base)))))

  (func $alloc (param $len i32) (result i32)
    (local $start i64)
    (local $end i64)
    ;; Step 3, in i64 so that nothing wraps.
    (local.set $start
      (i64.and
        (i64.add (i64.extend_i32_u (global.get $heap_next)) (i64.const 7))
        (i64.const -8)))
    (local.set $end (i64.add (local.get $start) (i64.extend_i32_u (local.get $len))))
    (call $ensure_memory (local.get $end))
    (global.set $heap_next (i32.wrap_i64 (local.get $end)))
    (i32.wrap_i64 (local.get $start)))

  ;; Grows the memory to cover [0, end), or traps when it cannot (see step 3).
  (func $ensure_memory (param $end i64)
    (local $size i64)
    (if (i64.ge_u (local.get $end) (i64.const 0x8000_0000))
      (then unreachable))
    (local.set $size (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
    (if (i64.gt_u (local.get $end) (local.get $size))
      (then
        ;; The missing bytes, rounded up to whole 64 KiB pages.
        (if (i32.eq
              (memory.grow
                (i32.wrap_i64
                  (i64.shr_u
                    (i64.add (i64.sub (local.get $end) (local.get $size)) (i64.const 0xffff))
                    (i64.const 16))))
              (i32.const -1))
          (then unreachable)))))

  ;; A success result: the pointer in the high 32 bits, the length in the low 32 bits.
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len))))

  ;; Hands the message (the constant at ptr, len) to the host and returns `code`.
  (func $fail (param $code i64) (param $ptr i32) (param $len i32) (result i64)
    (call $host_fail (local.get $ptr) (local.get $len))
    (local.get $code))

  ;; The bytes of memory from ptr to its current end, at most 2^31 - 1.
  (func $room_after (param $ptr i32) (result i32)
    (local $room i64)
    (local.set $room
      (i64.sub
        (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16))
        (i64.extend_i32_u (local.get $ptr))))
    (i32.wrap_i64
      (select
        (local.get $room)
        (i64.const 0x7fff_ffff)
        (i64.lt_u (local.get $room) (i64.const 0x7fff_ffff)))))

  ;; Reads the value of a key to `out`, growing the memory to hold all of it; returns its
  ;; length, or -1 if the key is absent.
  (func $get_into (param $key_ptr i32) (param $key_len i32) (param $out i32) (result i32)
    (local $len i32)
    (local.set $len
      (call $host_get
        (local.get $key_ptr) (local.get $key_len) (local.get $out)
        (call $room_after (local.get $out))))
    (if (i32.gt_s (local.get $len) (call $room_after (local.get $out)))
      (then
        ;; Only part of it fitted: grow, and read it again.
        (call $ensure_memory
          (i64.add (i64.extend_i32_u (local.get $out)) (i64.extend_i32_u (local.get $len))))
        (local.set $len
          (call $host_get
            (local.get $key_ptr) (local.get $key_len) (local.get $out)
            (call $room_after (local.get $out))))))
    (local.get $len))

  ;; Like $get_into, for the smallest key >= the cursor: copies it to `out` and returns its
  ;; length, or -1 if there is none.
  (func $scan_into (param $cursor_ptr i32) (param $cursor_len i32) (param $out i32) (result i32)
    (local $len i32)
    (local.set $len
      (call $host_scan
        (local.get $cursor_ptr) (local.get $cursor_len) (local.get $out)
        (call $room_after (local.get $out))))
    (if (i32.gt_s (local.get $len) (call $room_after (local.get $out)))
      (then
        (call $ensure_memory
          (i64.add (i64.extend_i32_u (local.get $out)) (i64.extend_i32_u (local.get $len))))
        (local.set $len
          (call $host_scan
            (local.get $cursor_ptr) (local.get $cursor_len) (local.get $out)
            (call $room_after (local.get $out))))))
    (local.get $len))

  (func (export "put") (param $args_ptr i32) (param $args_len i32) (result i64)
    (local $key_len i32)
    (local $value_ptr i32)
    (call $reset_heap (local.get $args_ptr) (local.get $args_len))

    ;; The key must fit in what follows its length field (compared unsigned, so nothing wraps).
    (if (i32.lt_u (local.get $args_len) (i32.const 4))
      (then (return (call $fail (i64.const -3) (i32.const 48) (i32.const 55)))))
    (local.set $key_len (i32.load (local.get $args_ptr)))
    (if (i32.gt_u (local.get $key_len) (i32.sub (local.get $args_len) (i32.const 4)))
      (then (return (call $fail (i64.const -3) (i32.const 48) (i32.const 55)))))

    (local.set $value_ptr
      (i32.add (i32.add (local.get $args_ptr) (i32.const 4)) (local.get $key_len)))
    (call $host_put
      (i32.add (local.get $args_ptr) (i32.const 4))
      (local.get $key_len)
      (local.get $value_ptr)
      (i32.sub (i32.sub (local.get $args_len) (i32.const 4)) (local.get $key_len)))
    (i64.const 0))

  (func (export "get") (param $args_ptr i32) (param $args_len i32) (result i64)
    (local $value_ptr i32)
    (local $value_len i32)
    (call $reset_heap (local.get $args_ptr) (local.get $args_len))
    (local.set $value_ptr (call $alloc (i32.const 0)))
    (local.set $value_len
      (call $get_into (local.get $args_ptr) (local.get $args_len) (local.get $value_ptr)))
    (if (i32.eq (local.get $value_len) (i32.const -1))
      (then (return (call $fail (i64.const -1) (i32.const 16) (i32.const 19)))))

    ;; Keep the value inside the heap, then return it.
    (drop (call $alloc (local.get $value_len)))
    (call $pack (local.get $value_ptr) (local.get $value_len)))

  (func (export "delete") (param $args_ptr i32) (param $args_len i32) (result i64)
    (local $out i32)
    (call $reset_heap (local.get $args_ptr) (local.get $args_len))
    (local.set $out (call $alloc (i32.const 1)))
    (i32.store8
      (local.get $out)
      (call $host_delete (local.get $args_ptr) (local.get $args_len)))
    (call $pack (local.get $out) (i32.const 1)))

  ;; The entries are written in place, one after another, at the end of the heap; nothing
  ;; else is allocated meanwhile, so the result is one contiguous range. To step past an
  ;; entry's key, the scan restarts from that key with a 0x00 byte appended: the byte after
  ;; the key is the first byte of the entry's value_len field, so it is set to 0x00 for the
  ;; scan and the field is written again right after.
  (func (export "scan") (param $args_ptr i32) (param $args_len i32) (result i64)
    (local $start_len i32)
    (local $limit i32)
    (local $count i32)
    (local $out i32)
    (local $entry i32)
    (local $key_ptr i32)
    (local $key_len i32)
    (local $value_ptr i32)
    (local $value_len i32)
    (local $previous_key_ptr i32)
    (local $previous_key_len i32)
    (local $previous_value_len i32)
    (call $reset_heap (local.get $args_ptr) (local.get $args_len))

    (if (i32.lt_u (local.get $args_len) (i32.const 8))
      (then (return (call $fail (i64.const -3) (i32.const 112) (i32.const 64)))))
    (local.set $start_len (i32.load (local.get $args_ptr)))
    (if (i32.ne (local.get $start_len) (i32.sub (local.get $args_len) (i32.const 8)))
      (then (return (call $fail (i64.const -3) (i32.const 112) (i32.const 64)))))
    (local.set $limit
      (i32.load (i32.add (i32.add (local.get $args_ptr) (i32.const 4)) (local.get $start_len))))

    (local.set $out (call $alloc (i32.const 0)))
    (local.set $entry (local.get $out))
    (block $done
      (loop $next_entry
        (br_if $done (i32.ge_u (local.get $count) (local.get $limit)))

        ;; Room for the two length fields at least; $scan_into grows it for a longer key.
        (call $ensure_memory (i64.add (i64.extend_i32_u (local.get $entry)) (i64.const 8)))
        (local.set $key_ptr (i32.add (local.get $entry) (i32.const 4)))
        (if (i32.eqz (local.get $count))
          (then
            ;; The first key: from the start key, inclusive.
            (local.set $key_len
              (call $scan_into
                (i32.add (local.get $args_ptr) (i32.const 4))
                (local.get $start_len)
                (local.get $key_ptr))))
          (else
            ;; The next key: from the previous key with 0x00 appended, then restore the
            ;; previous value_len field that held the 0x00.
            (i32.store8
              (i32.add (local.get $previous_key_ptr) (local.get $previous_key_len))
              (i32.const 0))
            (local.set $key_len
              (call $scan_into
                (local.get $previous_key_ptr)
                (i32.add (local.get $previous_key_len) (i32.const 1))
                (local.get $key_ptr)))
            (i32.store
              (i32.add (local.get $previous_key_ptr) (local.get $previous_key_len))
              (local.get $previous_value_len))))
        (br_if $done (i32.eq (local.get $key_len) (i32.const -1)))
        (i32.store (local.get $entry) (local.get $key_len))

        ;; The value follows its length field; the scan has just found the key, so it is
        ;; there, and get cannot return -1.
        (call $ensure_memory
          (i64.add
            (i64.extend_i32_u (i32.add (local.get $key_ptr) (local.get $key_len)))
            (i64.const 4)))
        (local.set $value_ptr
          (i32.add (i32.add (local.get $key_ptr) (local.get $key_len)) (i32.const 4)))
        (local.set $value_len
          (call $get_into (local.get $key_ptr) (local.get $key_len) (local.get $value_ptr)))
        (if (i32.eq (local.get $value_len) (i32.const -1))
          (then unreachable))
        (i32.store (i32.add (local.get $key_ptr) (local.get $key_len)) (local.get $value_len))

        (local.set $previous_key_ptr (local.get $key_ptr))
        (local.set $previous_key_len (local.get $key_len))
        (local.set $previous_value_len (local.get $value_len))
        (local.set $entry (i32.add (local.get $value_ptr) (local.get $value_len)))
        (local.set $count (i32.add (local.get $count) (i32.const 1)))
        (br $next_entry)))

    ;; The entries are now part of the heap.
    (global.set $heap_next (local.get $entry))
    (call $pack (local.get $out) (i32.sub (local.get $entry) (local.get $out))))
)
