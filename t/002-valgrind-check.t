# The memcheck report checker of `make test-valgrind`
# (t/lib/valgrind-check.pl) on made-up logs: an invalid read and a leak
# through module code fail it; nginx's own exit-time leaks and PCRE2 JIT
# reads pass, counted apart.

use strict;
use warnings;
use Test::More tests => 10;
use File::Temp qw(tempdir);

my $dir = tempdir(CLEANUP => 1);

sub check {
    my ($log) = @_;
    my $file = "$dir/valgrind." . int(rand(1e9));
    open my $fh, '>', $file or die $!;
    print $fh $log;
    close $fh;
    my $out = `$^X t/lib/valgrind-check.pl $file 2>&1`;
    return ($? >> 8, $out);
}

my $core_leak = <<'LOG';
==100== 24 bytes in 1 blocks are definitely lost in loss record 1 of 8
==100==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==100==    by 0x153A14: ngx_alloc (ngx_alloc.c:22)
==100==    by 0x12D365: ngx_set_environment (nginx.c:589)
==100== 
LOG

my $jit = <<'LOG';
==100== Thread 2:
==100== Conditional jump or move depends on uninitialised value(s)
==100==    at 0x154D3CC3: ???
==100==    by 0x5CA3D4F: ???
==100== 
LOG

my $invalid = <<'LOG';
==100== Invalid read of size 1
==100==    at 0x4C2F: ngx_http_asyncx_sse_next (ngx_http_asyncx_sse.c:120)
==100==    by 0x4D00: ngx_event_process_posted (ngx_event_posted.c:35)
==100== 
LOG

my $module_leak = <<'LOG';
==100== 64 bytes in 1 blocks are definitely lost in loss record 2 of 8
==100==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==100==    by 0x5000: ngx_http_asyncx_json_task (ngx_http_asyncx_offload_cpu.c:300)
==100== 
LOG

my ($rc, $out) = check($core_leak . $jit);
is($rc, 0, 'nginx-core leak and JIT read: pass');
like($out, qr/0 error\(s\) in module code, 1 nginx-core leak record\(s\) ignored, 1 uninitialised read\(s\) in JIT code ignored/,
     '... and are counted apart');

($rc, $out) = check($jit . $invalid);
is($rc, 1, 'an invalid read after a JIT record in the same log: fail');
like($out, qr/Invalid read of size 1\n\s+at 0x4C2F: ngx_http_asyncx_sse_next/,
     '... and the record is printed');

($rc, $out) = check($core_leak . $module_leak);
is($rc, 1, 'a definite leak through module code: fail');
like($out, qr/1 error\(s\) in module code, 1 nginx-core leak/, '... counted as one');

# what memcheck printed of a module leak before the runner passed
# --keep-debuginfo=yes: the unloaded module's frames have no name
my $unloaded_leak = <<'LOG';
==100== 36,864 bytes in 1 blocks are definitely lost in loss record 10 of 10
==100==    at 0x4846990: memalign (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==100==    by 0x154DD0: ngx_memalign (in /usr/sbin/nginx)
==100==    by 0x5483B96: ???
==100==    by 0x181B9F: ngx_http_read_client_request_body (in /usr/sbin/nginx)
==100== 
LOG

($rc, $out) = check($core_leak . $unloaded_leak);
is($rc, 1, 'a definite leak through code unloaded at exit: fail');
like($out, qr/1 error\(s\) in module code, 1 nginx-core leak/,
     '... counted as the module\'s');

($rc, $out) = check("==100== Conditional jump or move depends on uninitialised value(s)\n"
                  . "==100==    at 0x5100: ngx_http_asyncx_util_x (u.c:1)\n==100== \n");
is($rc, 1, 'an uninitialised read in named code: fail');

($rc, $out) = check('');
is($rc, 0, 'an empty log: pass');
