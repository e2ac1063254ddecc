# asyncx_file_write with workers running as "nobody" (as a root master
# starts them by default): rename() needs only the directory, so without
# a check a worker would replace files it may not write, and the new
# file would belong to nobody.  A file the worker cannot write in place
# is refused with 403 and left as it was; files it may write, and new
# files, are written.

use lib 't/lib';

my $nobody;

BEGIN {
    my @pw = getpwnam('nobody');
    $nobody = $pw[2];
    # the runner writes "user $TEST_NGINX_WORKER_USER;" (read at load);
    # Debian's nobody has the group nogroup, not a group "nobody"
    $ENV{TEST_NGINX_WORKER_USER} = 'nobody ' . (getgrgid($pw[3]) // 'nogroup')
        if $> == 0 && defined $nobody;
}

use Test::Nginx::Socket;
use File::Temp qw(tempdir);

# root can write anything, so nothing here would show the check
die "t/207 needs root (for a worker user of its own) and a nobody user\n"
    unless $> == 0 && defined $nobody;

my $w = tempdir('asyncx-owner-XXXXXX', TMPDIR => 1, CLEANUP => 1);
chown $nobody, -1, $w or die "chown $w: $!";
chmod 0755, $w or die $!;

sub put {
    my ($name, $uid, $mode) = @_;
    open my $fh, '>:raw', "$w/$name" or die "$name: $!";
    print $fh "original $name\n";
    close $fh;
    chown $uid, -1, "$w/$name" or die $!;
    chmod $mode, "$w/$name" or die $!;
}

put('root-owned.txt', 0, 0644);
put('nobody-owned.txt', $nobody, 0644);
put('nobody-readonly.txt', $nobody, 0444);

$ENV{TEST_NGINX_OWNER_DIR} = $w;

# owner and mode of a file, and its content, after the requests
sub state_of {
    my $f = "$w/$_[0]";
    my @st = stat $f or return "$_[0]: missing";
    open my $fh, '<:raw', $f or return "$_[0]: unreadable";
    local $/;
    my $c = <$fh>;
    $c =~ s/\n\z//;
    sprintf "%s uid=%s mode=%04o %s", $_[0],
            $st[4] == 0 ? 'root' : $st[4] == $nobody ? 'nobody' : $st[4],
            $st[2] & 07777, $c;
}

master_on();
repeat_each(1);

plan tests => repeat_each() * 14;

no_shuffle();
no_long_string();
run_tests();

__DATA__

=== TEST 1: a root-owned 0644 file and a read-only file are refused with 403; the worker's own file and a new one are written
--- config
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OWNER_DIR;
        asyncx_file_write;
    }
--- request eval
["POST /files/write?path=root-owned.txt\nreplaced",
 "POST /files/write?path=nobody-readonly.txt\nreplaced",
 "POST /files/write?path=nobody-owned.txt\nreplaced",
 "POST /files/write?path=new.txt\nnew"]
--- error_code eval
[403, 403, 200, 200]
--- response_body eval
["{\"error\": \"file write: write \\\"root-owned.txt\\\": permission denied\", \"status\": 403}\n",
 "{\"error\": \"file write: \\\"nobody-readonly.txt\\\" is read-only\", \"status\": 403}\n",
 "{\"written\":8,\"path\":\"nobody-owned.txt\",\"async\":true}\n",
 "{\"written\":3,\"path\":\"new.txt\",\"async\":true}\n"]
--- no_error_log
[error]



=== TEST 2: ... and on disk: the refused files are untouched (owner, mode, content), no temp file is left
--- config
    location = /t { return 200; }
--- request
GET /t
--- response_body_filters eval
sub {
    CORE::join "\n", (map { main::state_of($_) } qw(root-owned.txt nobody-readonly.txt nobody-owned.txt new.txt)),
               "temp files: " . scalar(() = glob("$ENV{TEST_NGINX_OWNER_DIR}/.*.tmp")) . "\n"
}
--- response_body
root-owned.txt uid=root mode=0644 original root-owned.txt
nobody-readonly.txt uid=nobody mode=0444 original nobody-readonly.txt
nobody-owned.txt uid=nobody mode=0644 replaced
new.txt uid=nobody mode=0644 new
temp files: 0
