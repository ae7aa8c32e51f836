;; bad_result: reducers that return a result range outside their memory of one 64 KiB page.
;;
;; A result is packed as `ptr << 32 | len` (docs/abi.md), and the range must lie in the
;; memory: `ptr + len <= memory size`, an empty range included.
;;
;; Reducers (none reads its arguments):
;;
;;   far             ptr 0x7fff_0000, len 16: far past the end of the memory
;;   past_end        ptr 65530, len 16: starts inside the memory and runs past its end
;;   wrapping        ptr 0x7fff_ffff, len 0xffff_ffff: the end overflows 32 bits
;;   empty_past_end  ptr 65537, len 0: an empty range, but past the end of the memory
;;
;; Hostile case: a reducer that returns a result pointer outside its memory. Every reducer
;; must end with CallError::BadResult, and the host reads nothing outside the memory.
(module
  (memory (export "memory") 1)

  ;; A success result: the pointer in the high 32 bits, the length in the low 32 bits.
  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or
      (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
      (i64.extend_i32_u (local.get $len))))

  (func (export "far") (param $args_ptr i32) (param $args_len i32) (result i64)
    (call $pack (i32.const 0x7fff_0000) (i32.const 16)))

  (func (export "past_end") (param $args_ptr i32) (param $args_len i32) (result i64)
    (call $pack (i32.const 65530) (i32.const 16)))

  (func (export "wrapping") (param $args_ptr i32) (param $args_len i32) (result i64)
    (call $pack (i32.const 0x7fff_ffff) (i32.const 0xffff_ffff)))

  (func (export "empty_past_end") (param $args_ptr i32) (param $args_len i32) (result i64)
    (call $pack (i32.const 65537) (i32.const 0)))
)
