/* A tiny multiboot kernel standing in for a Unikraft build: it prints a greeting on the
 * first serial port and stops the machine (a triple fault, which `qemu -no-reboot` turns
 * into an exit). Unikraft's x86_64 QEMU kernels are multiboot ELF32 images too. */
        .set MB_MAGIC, 0x1BADB002
        .set MB_FLAGS, 0
        .set COM1, 0x3f8

        .section .text
        .code32
        .align 4
multiboot_header:
        .long MB_MAGIC
        .long MB_FLAGS
        .long -(MB_MAGIC + MB_FLAGS)

        .global _start
_start:
        mov $message, %esi
        mov $COM1, %dx
1:      lodsb
        test %al, %al
        jz 2f
        out %al, %dx
        jmp 1b
2:      lidt empty_idt
        int $3                  /* no IDT: #GP, double fault, triple fault, reset */
3:      hlt
        jmp 3b

        .section .rodata
message:
        .asciz "Hello from a layerforge unikernel\r\n"
        .align 4
empty_idt:
        .word 0
        .long 0
