;; recursion: a reducer that recurses without bound until the engine's stack limit stops it.
;;
;; Reducers:
;;
;;   recurse  args: ignored
;;            calls $descend, which calls itself with no base case. Each frame keeps four
;;            i64 locals that are still needed after the call returns, so every frame takes
;;            real stack space and the call cannot become a loop. It never has a result;
;;            the call ends with a stack-overflow trap.
;;
;; No failure codes.
;;
;; Hostile case: deep recursion. The call must end with CallError::StackOverflow.
(module
  (memory (export "memory") 1)

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

  (func $descend (param $depth i64) (result i64)
    (local $a i64)
    (local $b i64)
    (local $c i64)
    (local $d i64)
    (local.set $a (i64.mul (local.get $depth) (i64.const 3)))
    (local.set $b (i64.xor (local.get $depth) (i64.const 0x5555)))
    (local.set $c (i64.rotl (local.get $a) (local.get $b)))
    (local.set $d (i64.add (local.get $c) (local.get $depth)))
    (i64.add
      (call $descend (i64.add (local.get $depth) (i64.const 1)))
      (i64.xor
        (i64.add (local.get $a) (local.get $b))
        (i64.add (local.get $c) (local.get $d)))))

  (func (export "recurse") (param $args_ptr i32) (param $args_len i32) (result i64)
    (call $reset_heap (local.get $args_ptr) (local.get $args_len))
    (call $descend (i64.const 0)))
)
