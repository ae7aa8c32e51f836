;; bank: accounts and their balances. Every key of the database is an account name, and its
;; value the balance, a u64 (8 bytes); an absent account has a balance of 0.
;;
;; Reducers (integers are little-endian):
;;
;;   deposit   args: u32 name_len, name, u64 amount
;;             adds amount to the account; result: the new balance, u64
;;   balance   args: name (all of the arguments)
;;             result: the balance, u64
;;   transfer  args: u32 from_len, from, u32 to_len, to, u64 amount
;;             moves amount from one account to the other; result: empty.
;;             The debit is written BEFORE the balance is checked, on purpose: a transfer
;;             that fails with -2 has already written the debit, and the host's atomicity
;;             must roll it back, which tests can observe.
;;   total     args: ignored
;;             result: the sum of every balance, u64, found with `scan`
;;
;; Failure codes (each with a message through `fail`):
;;
;;   -2  transfer: the balance of `from` is less than the amount
;;   -3  malformed arguments: a length field that does not match the arguments' size
;;   -4  a balance, or the total, would exceed the largest u64
;;   -5  a stored balance is not 8 bytes long
(module
  (import "corelane" "get" (func $host_get (param i32 i32 i32 i32) (result i32)))
  (import "corelane" "put" (func $host_put (param i32 i32 i32 i32)))
  (import "corelane" "scan" (func $host_scan (param i32 i32 i32 i32) (result i32)))
  (import "corelane" "fail" (func $host_fail (param i32 i32)))

  (memory (export "memory") 1)

  ;; Constant data: the failure messages.
  (data (i32.const 16) "bank.transfer: insufficient balance")
  (data (i32.const 64) "bank: the arguments do not match their length fields")
  (data (i32.const 128) "bank: a balance would exceed the largest u64")
  (data (i32.const 176) "bank: a stored balance is not 8 bytes long")

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

  ;; The balance of an account (0 when absent), read through the 8-byte `buffer`, and 1 if
  ;; it could be read, 0 if the stored value is not 8 bytes.
  (func $load_balance (param $name_ptr i32) (param $name_len i32) (param $buffer i32)
    (result i64 i32)
    (local $len i32)
    (local.set $len
      (call $host_get
        (local.get $name_ptr) (local.get $name_len) (local.get $buffer) (i32.const 8)))
    (if (i32.eq (local.get $len) (i32.const -1))
      (then (return (i64.const 0) (i32.const 1))))
    (i64.load (local.get $buffer))
    (i32.eq (local.get $len) (i32.const 8)))

  ;; Sets the balance of an account, through the 8-byte `buffer`.
  (func $store_balance (param $name_ptr i32) (param $name_len i32) (param $buffer i32)
    (param $balance i64)
    (i64.store (local.get $buffer) (local.get $balance))
    (call $host_put
      (local.get $name_ptr) (local.get $name_len) (local.get $buffer) (i32.const 8)))

  ;; A u64 as the 8-byte result.
  (func $u64_result (param $value i64) (result i64)
    (local $out i32)
    (local.set $out (call $alloc (i32.const 8)))
    (i64.store (local.get $out) (local.get $value))
    (call $pack (local.get $out) (i32.const 8)))

  (func (export "deposit") (param $args_ptr i32) (param $args_len i32) (result i64)
    (local $name_len i32)
    (local $buffer i32)
    (local $balance i64)
    (local $readable i32)
    (local $amount i64)
    (call $reset_heap (local.get $args_ptr) (local.get $args_len))

    ;; [u32 name_len][name][u64 amount]
    (if (i32.lt_u (local.get $args_len) (i32.const 12))
      (then (return (call $fail (i64.const -3) (i32.const 64) (i32.const 52)))))
    (local.set $name_len (i32.load (local.get $args_ptr)))
    (if (i32.ne (local.get $name_len) (i32.sub (local.get $args_len) (i32.const 12)))
      (then (return (call $fail (i64.const -3) (i32.const 64) (i32.const 52)))))
    (local.set $amount
      (i64.load (i32.add (i32.add (local.get $args_ptr) (i32.const 4)) (local.get $name_len))))

    (local.set $buffer (call $alloc (i32.const 8)))
    (call $load_balance
      (i32.add (local.get $args_ptr) (i32.const 4)) (local.get $name_len) (local.get $buffer))
    (local.set $readable)
    (local.set $balance)
    (if (i32.eqz (local.get $readable))
      (then (return (call $fail (i64.const -5) (i32.const 176) (i32.const 42)))))

    ;; An unsigned sum that wrapped is smaller than either term.
    (local.set $balance (i64.add (local.get $balance) (local.get $amount)))
    (if (i64.lt_u (local.get $balance) (local.get $amount))
      (then (return (call $fail (i64.const -4) (i32.const 128) (i32.const 44)))))

    (call $store_balance
      (i32.add (local.get $args_ptr) (i32.const 4))
      (local.get $name_len)
      (local.get $buffer)
      (local.get $balance))
    (call $u64_result (local.get $balance)))

  (func (export "balance") (param $args_ptr i32) (param $args_len i32) (result i64)
    (local $balance i64)
    (local $readable i32)
    (call $reset_heap (local.get $args_ptr) (local.get $args_len))
    (call $load_balance (local.get $args_ptr) (local.get $args_len) (call $alloc (i32.const 8)))
    (local.set $readable)
    (local.set $balance)
    (if (i32.eqz (local.get $readable))
      (then (return (call $fail (i64.const -5) (i32.const 176) (i32.const 42)))))
    (call $u64_result (local.get $balance)))

  (func (export "transfer") (param $args_ptr i32) (param $args_len i32) (result i64)
    (local $from_ptr i32)
    (local $from_len i32)
    (local $to_ptr i32)
    (local $to_len i32)
    (local $amount i64)
    (local $buffer i32)
    (local $balance i64)
    (local $readable i32)
    (call $reset_heap (local.get $args_ptr) (local.get $args_len))

    ;; [u32 from_len][from][u32 to_len][to][u64 amount]: 16 bytes besides the two names.
    (if (i32.lt_u (local.get $args_len) (i32.const 16))
      (then (return (call $fail (i64.const -3) (i32.const 64) (i32.const 52)))))
    (local.set $from_len (i32.load (local.get $args_ptr)))
    (if (i32.gt_u (local.get $from_len) (i32.sub (local.get $args_len) (i32.const 16)))
      (then (return (call $fail (i64.const -3) (i32.const 64) (i32.const 52)))))
    (local.set $from_ptr (i32.add (local.get $args_ptr) (i32.const 4)))
    (local.set $to_len (i32.load (i32.add (local.get $from_ptr) (local.get $from_len))))
    (if (i32.ne
          (local.get $to_len)
          (i32.sub (i32.sub (local.get $args_len) (i32.const 16)) (local.get $from_len)))
      (then (return (call $fail (i64.const -3) (i32.const 64) (i32.const 52)))))
    (local.set $to_ptr
      (i32.add (i32.add (local.get $from_ptr) (local.get $from_len)) (i32.const 4)))
    (local.set $amount (i64.load (i32.add (local.get $to_ptr) (local.get $to_len))))

    (local.set $buffer (call $alloc (i32.const 8)))
    (call $load_balance (local.get $from_ptr) (local.get $from_len) (local.get $buffer))
    (local.set $readable)
    (local.set $balance)
    (if (i32.eqz (local.get $readable))
      (then (return (call $fail (i64.const -5) (i32.const 176) (i32.const 42)))))

    ;; Debit first (wrapping if the balance is short), check after: see the top of the file.
    (call $store_balance
      (local.get $from_ptr)
      (local.get $from_len)
      (local.get $buffer)
      (i64.sub (local.get $balance) (local.get $amount)))
    (if (i64.lt_u (local.get $balance) (local.get $amount))
      (then (return (call $fail (i64.const -2) (i32.const 16) (i32.const 35)))))

    ;; Credit, read after the debit so that a transfer to oneself changes nothing.
    (call $load_balance (local.get $to_ptr) (local.get $to_len) (local.get $buffer))
    (local.set $readable)
    (local.set $balance)
    (if (i32.eqz (local.get $readable))
      (then (return (call $fail (i64.const -5) (i32.const 176) (i32.const 42)))))
    (local.set $balance (i64.add (local.get $balance) (local.get $amount)))
    (if (i64.lt_u (local.get $balance) (local.get $amount))
      (then (return (call $fail (i64.const -4) (i32.const 128) (i32.const 44)))))
    (call $store_balance
      (local.get $to_ptr) (local.get $to_len) (local.get $buffer) (local.get $balance))
    (i64.const 0))

  ;; Walks every key with `scan`. The cursor is the previous key with 0x00 appended; it lives
  ;; in one buffer while the next key is scanned into the other, and then they swap, so the
  ;; host never reads and writes the same bytes in one call. A buffer too small for a key is
  ;; replaced by a bigger one.
  (func (export "total") (param $args_ptr i32) (param $args_len i32) (result i64)
    (local $cursor i32)
    (local $cursor_len i32)
    (local $cursor_capacity i32)
    (local $spare i32)
    (local $spare_capacity i32)
    (local $swap i32)
    (local $swap_capacity i32)
    (local $key_len i32)
    (local $buffer i32)
    (local $balance i64)
    (local $readable i32)
    (local $total i64)
    (call $reset_heap (local.get $args_ptr) (local.get $args_len))

    ;; The first cursor is the empty key, the smallest of all.
    (local.set $buffer (call $alloc (i32.const 8)))
    (local.set $cursor_capacity (i32.const 64))
    (local.set $cursor (call $alloc (local.get $cursor_capacity)))
    (local.set $spare_capacity (i32.const 64))
    (local.set $spare (call $alloc (local.get $spare_capacity)))

    (block $done
      (loop $next_account
        (local.set $key_len
          (call $host_scan
            (local.get $cursor) (local.get $cursor_len)
            (local.get $spare) (local.get $spare_capacity)))
        (br_if $done (i32.eq (local.get $key_len) (i32.const -1)))

        ;; The spare buffer must hold the key and the 0x00 appended to it.
        (if (i32.ge_u (local.get $key_len) (local.get $spare_capacity))
          (then
            (local.set $spare_capacity (i32.add (local.get $key_len) (i32.const 1)))
            (local.set $spare (call $alloc (local.get $spare_capacity)))
            (local.set $key_len
              (call $host_scan
                (local.get $cursor) (local.get $cursor_len)
                (local.get $spare) (local.get $spare_capacity)))))

        (call $load_balance (local.get $spare) (local.get $key_len) (local.get $buffer))
        (local.set $readable)
        (local.set $balance)
        (if (i32.eqz (local.get $readable))
          (then (return (call $fail (i64.const -5) (i32.const 176) (i32.const 42)))))
        (local.set $total (i64.add (local.get $total) (local.get $balance)))
        (if (i64.lt_u (local.get $total) (local.get $balance))
          (then (return (call $fail (i64.const -4) (i32.const 128) (i32.const 44)))))

        ;; This key, with 0x00 appended, is the next cursor; the old cursor becomes spare.
        (i32.store8 (i32.add (local.get $spare) (local.get $key_len)) (i32.const 0))
        (local.set $cursor_len (i32.add (local.get $key_len) (i32.const 1)))
        (local.set $swap (local.get $cursor))
        (local.set $swap_capacity (local.get $cursor_capacity))
        (local.set $cursor (local.get $spare))
        (local.set $cursor_capacity (local.get $spare_capacity))
        (local.set $spare (local.get $swap))
        (local.set $spare_capacity (local.get $swap_capacity))
        (br $next_account)))

    (call $u64_result (local.get $total)))
)
