//! Console strings in Japanese and English. Every key exists in both languages (the table
//! has one row per key with both texts, and a test checks none is empty).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }
    pub fn parse(s: &str) -> Option<Lang> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ja" | "ja-jp" => Some(Lang::Ja),
            "en" | "en-us" | "en-gb" => Some(Lang::En),
            _ => None,
        }
    }
    /// The first of ja/en in an Accept-Language header, by quality.
    pub fn from_accept_language(h: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in h.split(',') {
            let mut it = part.trim().split(';');
            let tag = it.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or_default();
            if let Some(l) = Lang::parse(primary) {
                if best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, l));
                }
            }
        }
        best.map(|(_, l)| l)
    }
}

/// The translator handed to templates.
#[derive(Debug, Clone, Copy)]
pub struct Tr(pub Lang);

impl Tr {
    pub fn t(&self, key: &str) -> &'static str {
        match MESSAGES.iter().find(|(k, _, _)| *k == key) {
            Some((_, ja, en)) => match self.0 {
                Lang::Ja => ja,
                Lang::En => en,
            },
            None => {
                tracing::warn!(key, "missing console message");
                "???"
            }
        }
    }
    pub fn lang(&self) -> &'static str {
        self.0.code()
    }
}

/// key, 日本語, English
pub const MESSAGES: &[(&str, &str, &str)] = &[
    ("app.name", "Kura 蔵", "Kura"),
    (
        "app.tagline",
        "セキュアなワークスペース",
        "Secure workspace",
    ),
    ("nav.workspace", "ワークスペース", "Workspace"),
    ("nav.users", "ユーザー管理", "Users"),
    ("nav.audit", "監査ログ", "Audit log"),
    ("nav.logout", "ログアウト", "Log out"),
    ("nav.language", "言語", "Language"),
    ("lang.switch", "English", "日本語"),
    ("login.title", "ログイン", "Log in"),
    ("login.tenant", "テナントID", "Tenant ID"),
    ("login.email", "メールアドレス", "E-mail"),
    ("login.password", "パスワード", "Password"),
    ("login.submit", "ログイン", "Log in"),
    (
        "login.failed",
        "テナントID、メールアドレスまたはパスワードが正しくありません。",
        "Invalid tenant ID, e-mail or password.",
    ),
    (
        "login.expired",
        "セッションが終了しました。もう一度ログインしてください。",
        "Your session has ended. Please log in again.",
    ),
    (
        "login.logged_out",
        "ログアウトしました。",
        "You have logged out.",
    ),
    ("invite.title", "パスワードの設定", "Set your password"),
    (
        "login.forgot",
        "パスワードをお忘れですか？",
        "Forgot your password?",
    ),
    ("reset.title", "パスワードの再設定", "Reset your password"),
    (
        "reset.intro",
        "テナントIDとメールアドレスを入力してください。再設定用のリンクをメールでお送りします。",
        "Enter your tenant ID and e-mail address; we will mail you a link to set a new password.",
    ),
    ("reset.send", "再設定リンクを送信", "Send the link"),
    (
        "reset.choose",
        "新しいパスワードを設定してください。設定すると、ログイン中のすべてのセッションが終了します。",
        "Choose a new password. Setting it ends all your signed-in sessions.",
    ),
    ("reset.set", "パスワードを設定", "Set the password"),
    (
        "reset.invalid",
        "この再設定リンクは無効か、期限切れか、使用済みです。",
        "This reset link is invalid, expired or already used.",
    ),
    (
        "reset.again",
        "再設定リンクをもう一度送る",
        "Send a new link",
    ),
    (
        "ok.reset_sent",
        "アカウントが存在する場合は、再設定用のリンクをメールで送信しました。",
        "If the account exists, a reset link has been mailed.",
    ),
    (
        "ok.password_reset",
        "パスワードを再設定しました。新しいパスワードでログインしてください。",
        "Your password has been reset. Log in with the new password.",
    ),
    (
        "invite.intro",
        "招待を受け付けるため、パスワードを設定してください。",
        "Set a password to accept the invitation.",
    ),
    ("invite.password2", "パスワード（確認）", "Password (again)"),
    (
        "invite.submit",
        "パスワードを設定してログイン",
        "Set password and log in",
    ),
    (
        "invite.invalid",
        "この招待リンクは無効か、期限切れか、使用済みです。",
        "This invitation link is invalid, expired or already used.",
    ),
    (
        "invite.mismatch",
        "確認用パスワードが一致しません。",
        "The passwords do not match.",
    ),
    ("ws.title", "ワークスペース", "Workspace"),
    (
        "ws.empty",
        "表示できるフォルダーはまだありません。",
        "No folders to show yet.",
    ),
    ("ws.folder", "フォルダー", "Folder"),
    ("ws.project", "プロジェクト", "Project"),
    ("ws.new_folder", "フォルダーを作成", "New folder"),
    ("ws.new_project", "プロジェクトを作成", "New project"),
    ("ws.name", "名前", "Name"),
    ("ws.parent", "親フォルダー", "Parent folder"),
    ("ws.top_level", "（最上位）", "(top level)"),
    ("ws.in_folder", "作成先フォルダー", "In folder"),
    ("ws.create", "作成", "Create"),
    ("ws.rename", "名前を変更", "Rename"),
    ("ws.delete", "削除", "Delete"),
    ("ws.created_at", "作成日時", "Created"),
    ("ws.label", "ラベル", "Label"),
    ("files.name", "ファイル名", "File name"),
    ("nav.search", "検索", "Search"),
    ("nav.security", "セキュリティ設定", "Security"),
    ("security.title", "セキュリティ設定", "Security settings"),
    (
        "security.mfa_required",
        "全員に2段階認証を必須にする（未設定のユーザーは次回ログイン時に設定するまで他の操作ができません）",
        "Require two-step verification for everyone (users without it must set it up at their next log-in before anything else)",
    ),
    ("security.sessions", "セッション", "Sessions"),
    (
        "security.mfa_roles",
        "または、次のロールのユーザーにだけ必須にする:",
        "Or require it only for users with these roles:",
    ),
    ("security.ip", "接続元IPアドレスの制限", "Allowed client addresses"),
    (
        "security.ip_ranges",
        "許可するIPアドレス範囲（1行に1つ、CIDR。空欄ですべて許可）",
        "Allowed ranges (one CIDR per line; empty allows all)",
    ),
    (
        "security.ip_roles",
        "対象のロール（未選択ですべてのユーザー）:",
        "Apply to roles (none selected: everyone):",
    ),
    ("security.ip_current", "現在の接続元:", "Your current address:"),
    (
        "security.ip_confirm",
        "現在の接続元が含まれなくても保存する（自分が利用できなくなります）",
        "Save even if it excludes my current address (I will lose access)",
    ),
    ("security.idle", "無操作でログアウトするまで（分）", "Log out after inactivity (minutes)"),
    ("security.absolute", "最長ログイン時間（時間）", "Longest session (hours)"),
    ("security.passwords", "パスワードポリシー", "Password policy"),
    ("security.min_length", "最小文字数", "Minimum length"),
    ("security.require_symbol", "記号を必須にする", "Require a symbol"),
    ("security.require_mixed_case", "大文字と小文字を必須にする", "Require upper and lower case"),
    (
        "security.min_strength",
        "推測されにくさ（0〜4、zxcvbn）",
        "Minimum strength (0–4, zxcvbn)",
    ),
    ("security.save", "保存", "Save"),
    (
        "ok.settings_saved",
        "設定を保存しました。",
        "Settings saved.",
    ),
    ("account.title", "アカウントとセッション", "Account and sessions"),
    ("tokens.title", "APIトークン", "API tokens"),
    (
        "tokens.shown_once",
        "新しいトークンです。この画面でしか表示されません。今すぐ控えてください:",
        "Your new token. It is shown only now; copy it:",
    ),
    ("tokens.expires", "有効期限", "Expires"),
    ("tokens.revoked", "失効済み", "revoked"),
    ("tokens.revoke", "失効させる", "Revoke"),
    ("tokens.days", "有効日数（最大365日）", "Valid for days (at most 365)"),
    ("tokens.create", "トークンを発行", "Create token"),
    (
        "ok.token_created",
        "APIトークンを発行しました。",
        "API token created.",
    ),
    (
        "ok.token_revoked",
        "APIトークンを失効させました。",
        "API token revoked.",
    ),
    ("mfa.title", "2段階認証", "Two-step verification"),
    (
        "mfa.intro",
        "認証アプリに表示されている6桁のコードを入力してください。",
        "Enter the 6-digit code from your authenticator app.",
    ),
    ("mfa.code", "確認コード", "Code"),
    (
        "mfa.recovery_hint",
        "端末が手元にない場合は、リカバリーコードを入力できます。",
        "Without your device, you can enter a recovery code.",
    ),
    (
        "mfa.failed",
        "コードが正しくないか、期限が切れています。",
        "The code is wrong or has expired.",
    ),
    ("outbox.title", "送信メール（デモ）", "Mail outbox (demo)"),
    (
        "outbox.hint",
        "SMTP サーバーが設定されていないため、Kura が送るメールはここに表示されます（このマシンからのみ閲覧できます）。",
        "No SMTP server is configured, so the mail Kura sends is shown here (readable from this machine only).",
    ),
    ("outbox.empty", "メールはまだありません。", "No mail yet."),
    ("outbox.to", "宛先", "To"),
    ("svc.title", "サービスアカウント", "Service account"),
    ("svc.badge", "サービス", "service"),
    ("svc.create", "サービスアカウントを作成", "Create a service account"),
    (
        "svc.hint",
        "サービスアカウントはログインできません。管理者が発行する API トークンだけで、付与されたロールの範囲で動作します。",
        "A service account cannot log in. It acts only through API tokens an admin issues for it, within the roles granted to it.",
    ),
    (
        "ok.service_account_created",
        "サービスアカウントを作成しました。API トークンを発行してください。",
        "Service account created. Issue it an API token.",
    ),
    ("nav.usage", "利用状況", "Usage"),
    ("usage.title", "利用状況", "Usage"),
    ("usage.daily", "日別（30日）", "Daily (30 days)"),
    ("usage.monthly", "月別（12か月）", "Monthly (12 months)"),
    (
        "usage.hint",
        "1時間ごとに集計します。ログを削除しても集計値は残ります。",
        "Computed hourly; the figures stay when the logs are purged.",
    ),
    ("usage.day", "日付", "Day"),
    ("usage.month", "月", "Month"),
    ("usage.logins", "ログイン", "Log-ins"),
    ("usage.active_users", "アクティブユーザー", "Active users"),
    ("usage.uploads", "アップロード", "Uploads"),
    ("usage.downloads", "ダウンロード", "Downloads"),
    ("usage.folders", "フォルダー", "Folders"),
    ("usage.projects", "プロジェクト", "Projects"),
    ("usage.files", "ファイル", "Files"),
    ("usage.bytes", "保存容量（バイト）", "Stored (bytes)"),
    ("usage.storage_mib", "保存容量（MiB）", "Stored (MiB)"),
    ("access.title", "アクセスログ", "Access log"),
    ("access.status", "ステータス", "Status"),
    ("access.path", "パス", "Path"),
    ("access.request", "リクエスト", "Request"),
    ("logs.from", "開始", "From"),
    ("logs.to", "終了", "To"),
    ("logs.user", "ユーザー ID", "User ID"),
    ("logs.filter", "絞り込む", "Filter"),
    ("logs.older", "さらに古いもの", "Older"),
    ("logs.export", "エクスポート", "Export"),
    (
        "logs.export_hint",
        "JSON Lines は署名付きで、kura audit verify でオフライン検証できます。",
        "JSON Lines is signed and verifies offline with kura audit verify.",
    ),
    ("logs.public_key", "検証用公開鍵", "Verification public key"),
    (
        "logs.bad_filter",
        "日時は 2026-11-21 または 2026-11-21T09:00 の形で、結果は success / failure / denied、ステータスは 4xx または 404 の形で指定してください。",
        "Give times as 2026-11-21 or 2026-11-21T09:00, results as success / failure / denied, statuses as 4xx or 404.",
    ),
    ("security.retention", "ログの保存期間", "Log retention"),
    (
        "security.retention_hint",
        "90日（最短）、365日、730日、または任意の日数。期限を過ぎたログは1時間ごとに削除され、監査ログの連鎖は署名付きチェックポイントから検証できます。",
        "90 days (the minimum), 365, 730, or any number of days. Older entries are purged hourly; the audit chain still verifies from a signed checkpoint.",
    ),
    ("security.audit_retention", "監査ログ（日）", "Audit log (days)"),
    ("security.access_retention", "アクセスログ（日）", "Access log (days)"),
    ("backup.last_verified", "最新の検証済みバックアップ", "Latest verified backup"),
    ("backup.none", "まだありません", "none yet"),
    ("backup.kept", "保持世代数", "generations kept:"),
    ("notice.effective", "実施日時", "Effective"),
    ("notice.kind.spec_change", "仕様変更のお知らせ", "Specification change"),
    ("notice.kind.major_ui_change", "画面の大きな変更のお知らせ", "Major UI change"),
    ("notice.kind.planned_maintenance", "計画メンテナンスのお知らせ", "Planned maintenance"),
    ("notice.kind.emergency", "緊急のお知らせ", "Emergency notice"),
    ("notice.kind.incident", "障害発生中", "Ongoing incident"),
    ("status.title", "稼働状況", "Service status"),
    ("status.operational", "正常に稼働しています", "All systems operational"),
    ("status.degraded", "障害が発生しています", "An incident is ongoing"),
    ("status.down", "停止しています", "The service is down"),
    ("status.checked", "最終確認", "Last checked"),
    ("status.availability", "稼働率（Kura 自身の監視による実測）", "Availability (measured by Kura's own probes)"),
    ("status.days", "日間", "days"),
    ("status.slo", "目標", "Objective"),
    ("status.below_slo", "目標未達", "below objective"),
    ("status.downtime", "今年の計画停止", "Planned downtime this year"),
    ("status.budget", "年間上限", "yearly budget"),
    ("status.incidents", "発生中の障害", "Ongoing incidents"),
    ("status.maintenance", "予定されているメンテナンス", "Planned maintenance"),
    ("status.none", "ありません", "None"),
    ("lifecycle.title", "ご契約とデータの扱い", "Contract and data"),
    ("lifecycle.active", "ご契約は有効です。", "The contract is active."),
    (
        "lifecycle.policy",
        "ご契約が終了すると、ただちにログインできなくなり、契約管理者にすべてのデータのエクスポートのリンクをお送りします。データは {delete} 日後に削除され、その {shred} 日後に暗号鍵を鍵保管庫とすべてのバックアップ（{keep} 世代）から破棄します（暗号化消去）。署名付きのデータ削除証明書を発行します。",
        "When the contract ends, logging in stops at once and the contract admins are mailed a link to an export of all data. The data is deleted {delete} days later, and {shred} days after that its keys are destroyed in the key vault and in every backup ({keep} generations) — crypto-shredding. A signed deletion certificate is issued.",
    ),
    ("signup.title", "お申し込み", "Sign up"),
    ("signup.email_intro", "メールアドレスに確認コードをお送りします。", "We will mail you a verification code."),
    ("signup.send", "確認コードを送る", "Send the code"),
    ("signup.code_intro", "メールでお送りした 6 桁の確認コードを入力してください（15 分間有効）。", "Enter the 6-digit code we mailed you (valid for 15 minutes)."),
    ("signup.code", "確認コード", "Code"),
    ("signup.verify", "確認する", "Verify"),
    ("signup.details_intro", "テナント ID とパスワードを決めてください。あなたが契約管理者になります。", "Choose your tenant ID and password. You will be its contract admin."),
    ("signup.tenant_name", "組織名", "Organisation name"),
    ("signup.display_name", "お名前", "Your name"),
    ("signup.create", "作成する", "Create"),
    ("signup.bad_email", "メールアドレスを確認してください。", "Check the e-mail address."),
    ("signup.bad_code", "確認コードが違います。", "The code is wrong."),
    ("signup.code_expired", "確認コードの有効期限が切れています。もう一度メールアドレスを入力して新しいコードを受け取ってください。", "The code has expired: enter your e-mail address again for a new one."),
    ("signup.code_exhausted", "確認コードの入力を何度も間違えたため、1 時間はこのアドレスで確認できません。", "Too many wrong codes: this address cannot be confirmed for an hour."),
    ("signup.rate_limited", "確認コードの送信回数の上限に達しました。しばらくしてからお試しください。", "Too many codes were sent: try again later."),
    ("signup.expired", "お申し込みの期限が切れました。最初からやり直してください。", "This sign-up has expired; please start again."),
    (
        "signup.rejected",
        "作成できませんでした。テナント ID（英小文字・数字・ハイフン）が使用済みでないか、パスワードが十分に強いかを確認してください。",
        "It could not be created: check that the tenant ID (lower-case letters, digits, hyphens) is free and the password strong enough.",
    ),
    ("passkey.section", "パスキー", "Passkeys"),
    (
        "passkey.hint",
        "パスキーはこの端末の生体認証や PIN で本人を確認します。パスワードなしのログインにも、2段階認証にも使えます。",
        "A passkey checks it is you with this device's biometrics or PIN. Use it to log in without a password, or as a second step.",
    ),
    ("passkey.name", "名前（端末など）", "Name (e.g. the device)"),
    ("passkey.add", "パスキーを追加", "Add a passkey"),
    ("passkey.remove", "削除", "Remove"),
    ("passkey.login", "パスキーでログイン", "Log in with a passkey"),
    ("passkey.use", "パスキーを使う", "Use a passkey"),
    (
        "passkey.failed",
        "パスキーを確認できませんでした。もう一度お試しください。",
        "The passkey could not be verified. Please try again.",
    ),
    (
        "passkey.needs_js",
        "パスキーの登録には JavaScript が必要です。",
        "Registering a passkey needs JavaScript.",
    ),
    ("ok.passkey_added", "パスキーを追加しました。", "Passkey added."),
    ("ok.passkey_removed", "パスキーを削除しました。", "Passkey removed."),
    ("mfa.section", "2段階認証（認証アプリ）", "Two-step verification (authenticator app)"),
    ("mfa.on", "有効", "On"),
    ("mfa.off", "未設定", "Not set up"),
    (
        "mfa.required_now",
        "組織の方針により設定が必要です。設定するまで他の操作はできません。",
        "Your organisation requires it: set it up before doing anything else.",
    ),
    ("mfa.setup", "認証アプリを設定", "Set up an authenticator app"),
    ("mfa.disable", "無効にする", "Turn off"),
    ("mfa.recovery_left", "残りのリカバリーコード", "Recovery codes left"),
    ("mfa.enrol_title", "認証アプリの設定", "Set up an authenticator app"),
    (
        "mfa.enrol_intro",
        "認証アプリ（Google Authenticator、Microsoft Authenticator など）でQRコードを読み取り、表示されたコードを入力してください。",
        "Scan the QR code with an authenticator app (Google Authenticator, Microsoft Authenticator…), then enter the code it shows.",
    ),
    ("mfa.secret", "手入力用のキー", "Key for manual entry"),
    ("mfa.confirm", "確認して有効にする", "Confirm and turn on"),
    ("mfa.recovery_title", "リカバリーコード", "Recovery codes"),
    (
        "mfa.recovery_intro",
        "端末をなくしたときのためのコードです。安全な場所に保管してください。各コードは1回だけ使えます。この画面は二度と表示されません。",
        "Keep these codes somewhere safe in case you lose your device. Each works once. They will not be shown again.",
    ),
    ("mfa.recovery_done", "保管しました", "I have stored them"),
    (
        "ok.totp_enabled",
        "2段階認証を有効にしました。",
        "Two-step verification is on.",
    ),
    (
        "ok.totp_disabled",
        "2段階認証を無効にしました。",
        "Two-step verification is off.",
    ),
    ("account.sessions", "ログイン中のセッション", "Signed-in sessions"),
    ("account.device", "端末（ブラウザー）", "Device (browser)"),
    ("account.ip", "IPアドレス", "IP address"),
    ("account.started", "開始", "Started"),
    ("account.last_seen", "最終利用", "Last used"),
    ("account.kind", "種別", "Kind"),
    ("account.this", "このセッション", "this session"),
    ("account.end", "終了する", "End"),
    (
        "account.sessions_hint",
        "心当たりのないセッションは終了し、パスワードを変更してください。",
        "End any session you do not recognise, then change your password.",
    ),
    ("users.end_sessions", "全セッション終了", "End sessions"),
    (
        "ok.session_ended",
        "セッションを終了しました。",
        "The session has ended.",
    ),
    (
        "ok.sessions_ended",
        "このユーザーのすべてのセッションを終了しました。",
        "All of this user's sessions have ended.",
    ),
    ("search.title", "ファイル検索", "Search files"),
    ("search.submit", "検索", "Search"),
    (
        "search.hint",
        "ファイル名・タグ・ラベルで、閲覧できるすべてのプロジェクトから検索します。",
        "Search every project you can see by file name, tag or label.",
    ),
    ("files.tag", "タグ", "Tag"),
    ("files.tags", "タグ", "Tags"),
    (
        "files.tags_hint",
        "カンマ区切り（例: 契約, 2026）",
        "Comma-separated (e.g. contract, 2026)",
    ),
    ("files.all_labels", "（すべてのラベル）", "(all labels)"),
    ("files.filter", "絞り込む", "Filter"),
    ("files.clear", "条件をクリア", "Clear"),
    ("files.next_page", "次のページ →", "Next page →"),
    ("files.first_page", "← 最初のページ", "← First page"),
    (
        "files.no_match",
        "条件に合うファイルはありません。",
        "No files match.",
    ),
    ("files.download", "ダウンロード", "Download"),
    ("files.details", "ファイルの詳細", "File details"),
    ("files.versions", "版の履歴", "Versions"),
    ("files.current", "最新", "current"),
    ("files.type", "種類", "Type"),
    ("files.by", "登録者", "By"),
    (
        "files.restore_version",
        "この版に戻す",
        "Restore this version",
    ),
    ("files.labels_tags", "ラベルとタグ", "Label and tags"),
    ("files.save", "保存", "Save"),
    ("files.move", "移動", "Move"),
    ("files.move_to", "移動先プロジェクト", "To project"),
    ("files.trash", "ゴミ箱", "Trash"),
    (
        "files.trash_empty",
        "ゴミ箱は空です。",
        "The trash is empty.",
    ),
    ("files.deleted_at", "削除日時", "Deleted"),
    ("files.restore", "元に戻す", "Restore"),
    ("files.purge", "完全に削除", "Delete for good"),
    (
        "files.upload_failed",
        "アップロードに失敗しました。もう一度お試しください。",
        "The upload failed. Please try again.",
    ),
    (
        "ok.file_updated",
        "ファイルを更新しました。",
        "File updated.",
    ),
    (
        "ok.file_restored",
        "ファイルをゴミ箱から戻しました。",
        "File restored from the trash.",
    ),
    (
        "ok.file_purged",
        "ファイルを完全に削除しました。",
        "File deleted for good.",
    ),
    (
        "ok.version_restored",
        "選んだ版を最新版として戻しました。",
        "The version was restored as the newest version.",
    ),
    ("files.size", "サイズ（バイト）", "Size (bytes)"),
    ("files.version", "版", "Version"),
    ("files.updated", "更新日時", "Updated"),
    ("files.empty", "ファイルはまだありません。", "No files yet."),
    ("files.upload", "アップロード", "Upload"),
    ("files.file", "ファイル", "File"),
    (
        "files.same_name",
        "同じ名前のファイルは新しい版として保存されます。ファイルは暗号化して保管されます。",
        "A file with the same name is stored as a new version. Files are stored encrypted.",
    ),
    (
        "ok.file_uploaded",
        "ファイルをアップロードしました（暗号化して保管）。",
        "File uploaded (stored encrypted).",
    ),
    (
        "ok.file_deleted",
        "ファイルをゴミ箱に移動しました。",
        "File moved to the trash.",
    ),
    ("ws.inherit", "（上位から継承）", "(inherit from parent)"),
    ("users.max_label", "閲覧できる上限ラベル", "Label cap"),
    ("users.no_cap", "制限なし", "No cap"),
    (
        "ok.folder_created",
        "フォルダーを作成しました。",
        "Folder created.",
    ),
    (
        "ok.folder_renamed",
        "フォルダー名を変更しました。",
        "Folder renamed.",
    ),
    (
        "ok.folder_deleted",
        "フォルダーを削除しました。",
        "Folder deleted.",
    ),
    (
        "ok.project_created",
        "プロジェクトを作成しました。",
        "Project created.",
    ),
    (
        "ok.project_deleted",
        "プロジェクトを削除しました。",
        "Project deleted.",
    ),
    (
        "ok.user_invited",
        "ユーザーを招待しました。招待メールを送信しました。",
        "User invited; the invitation has been mailed.",
    ),
    (
        "ok.user_frozen",
        "ユーザーを凍結しました。このユーザーのセッションはすべて終了しました。",
        "User frozen; all their sessions have ended.",
    ),
    (
        "ok.user_unfrozen",
        "ユーザーの凍結を解除しました。",
        "User unfrozen.",
    ),
    (
        "ok.user_deleted",
        "ユーザーを削除しました。",
        "User deleted.",
    ),
    ("ok.grant_added", "ロールを付与しました。", "Role granted."),
    (
        "ok.grant_removed",
        "ロールを取り消しました。",
        "Role revoked.",
    ),
    ("users.title", "ユーザー管理", "Users"),
    ("users.email", "メールアドレス", "E-mail"),
    ("users.name", "表示名", "Display name"),
    ("users.status", "状態", "Status"),
    ("users.roles", "ロール", "Roles"),
    ("users.actions", "操作", "Actions"),
    ("users.invite", "ユーザーを招待", "Invite a user"),
    ("users.language", "言語", "Language"),
    ("users.role", "ロール", "Role"),
    ("users.scope", "範囲", "Scope"),
    ("users.scope_tenant", "テナント全体", "Whole tenant"),
    ("users.send_invite", "招待を送信", "Send invitation"),
    ("users.freeze", "凍結", "Freeze"),
    ("users.unfreeze", "凍結解除", "Unfreeze"),
    ("users.delete", "削除", "Delete"),
    ("users.grant", "付与", "Grant"),
    ("users.revoke", "取消", "Revoke"),
    ("users.you", "（あなた）", "(you)"),
    ("status.active", "有効", "Active"),
    ("status.invited", "招待中", "Invited"),
    ("status.frozen", "凍結中", "Frozen"),
    ("role.contract_admin", "契約管理者", "Contract admin"),
    ("role.admin", "管理者", "Admin"),
    ("role.member", "一般ユーザー", "Member"),
    ("role.guest", "ゲスト", "Guest"),
    ("audit.title", "監査ログ", "Audit log"),
    ("audit.time", "日時", "Time"),
    ("audit.actor", "操作者", "Actor"),
    ("audit.action", "操作", "Action"),
    ("audit.target", "対象", "Target"),
    ("audit.result", "結果", "Result"),
    ("audit.ip", "IPアドレス", "IP address"),
    (
        "audit.chain_ok",
        "ハッシュチェーンを検証しました：改ざんはありません。",
        "Hash chain verified: no tampering.",
    ),
    (
        "audit.chain_bad",
        "ハッシュチェーンの検証に失敗しました：",
        "Hash chain verification FAILED: ",
    ),
    ("audit.zone", "表示タイムゾーン", "Time zone"),
    ("audit.checkpoint", "最新の署名付きチェックポイント", "Newest signed checkpoint"),
    (
        "audit.checkpoint_hint",
        "Kura の外に保管してください（契約管理者には毎日メールでも届きます）。後日 POST /api/v1/audit/verify に送ると、監査ログがこの時点から書き換え・切り詰めされていないことを確かめられます。",
        "Keep it outside Kura (contract admins also get it by mail daily). Sent to POST /api/v1/audit/verify later, it shows that the audit log was neither rewritten nor cut back since.",
    ),
    ("audit.checkpoint_download", "JSON を保存", "Save as JSON"),
    ("err.not_found", "見つかりません。", "Not found."),
    (
        "err.ip_not_allowed",
        "組織の設定により、このネットワーク（IPアドレス）からは利用できません。",
        "Your organisation does not allow access from this network (IP address).",
    ),
    (
        "err.locked",
        "ログインの失敗が続いたため、しばらくログインできません。時間をおいて試すか、パスワードを再設定してください。",
        "Too many failed log-ins: try again later, or reset your password.",
    ),
    (
        "err.forbidden",
        "この操作を行う権限がありません。",
        "You do not have permission to do this.",
    ),
    (
        "err.invalid",
        "入力内容に誤りがあります。",
        "Invalid input.",
    ),
    (
        "err.weak_password",
        "このパスワードは使用できません。",
        "This password cannot be used.",
    ),
    (
        "err.conflict",
        "この操作は実行できません。",
        "This cannot be done.",
    ),
    ("err.too_large", "ファイルまたは入力が大きすぎます。", "The file or input is too large."),
    ("err.quota", "組織の保存容量の上限に達しています。", "Your organisation's storage quota is used up."),
    ("err.unavailable", "一時的に利用できません。しばらくしてからお試しください。", "Temporarily unavailable; try again shortly."),
    ("err.storage_full", "サーバーの保存領域がいっぱいです。何も保存されていません。運用者にお知らせください。", "The server's storage is full; nothing was saved. Please tell the operator."),
    ("err.field", " 項目: ", " Field: "),
    ("err.rate_limited", "短い間に何度も依頼がありました。しばらくしてからお試しください。", "Too many requests in a short time; try again later."),
    ("err.rejected", "確認できませんでした。", "That could not be confirmed."),
    ("err.r.code_wrong", " 確認コードが違います。", " The code is wrong."),
    ("err.r.code_expired", " 確認コードの有効期限が切れています。新しいコードを依頼してください。", " The code has expired; ask for a new one."),
    ("err.r.code_exhausted", " 確認コードの入力回数の上限に達しました。1 時間後に新しいコードを依頼してください。", " Too many wrong codes; ask for a new code in an hour."),
    ("err.r.signup_used", " このお申し込みはすでに完了しているか、期限が切れています。最初からやり直してください。", " This sign-up was completed or has expired; start again."),
    ("err.r.pw_too_short", " {n} 文字以上にしてください。", " Use at least {n} characters."),
    ("err.r.pw_too_long", " {n} 文字以下にしてください。", " Use at most {n} characters."),
    ("err.r.pw_letter", " 英字を含めてください。", " Include a letter."),
    ("err.r.pw_digit", " 数字を含めてください。", " Include a digit."),
    ("err.r.pw_symbol", " 記号を含めてください。", " Include a symbol."),
    ("err.r.pw_mixed_case", " 大文字と小文字を混ぜてください。", " Mix upper- and lower-case letters."),
    ("err.r.pw_too_weak", " 推測されやすいパスワードです（よくある単語・パターン、お名前・メールアドレス・組織名を含むもの）。", " It is too easy to guess (a common word or pattern, or it contains your name, e-mail or organisation)."),
    ("err.r.pw_personal", " メールアドレス・お名前・組織名・テナント ID を含むパスワードは使えません。", " It must not contain your e-mail address, your name, or your organisation's name or ID."),
    ("err.r.pw_mismatch", " 確認用のパスワードが一致しません。", " The two passwords differ."),
    ("err.r.folder_not_empty", " フォルダーが空ではありません。", " The folder is not empty."),
    ("err.r.project_not_empty", " プロジェクトにファイルが残っています。", " The project still has files."),
    ("err.r.already_frozen", " このユーザーはすでに凍結されています。", " The user is already frozen."),
    ("err.r.not_frozen", " このユーザーは凍結されていません。", " The user is not frozen."),
    ("err.r.file_name_taken", " 同じ名前のファイルがプロジェクトにあります。", " A file with this name exists in the project."),
    ("err.r.role_name_taken", " 同じ名前のロールがあります。", " A role with this name exists."),
    ("err.r.email_taken", " このメールアドレスのユーザーはすでにいます。", " A user with this e-mail exists."),
    ("err.r.own_account", " 自分自身のアカウントは凍結・削除できません。", " You cannot freeze or delete your own account."),
    ("err.r.ip_lockout", " この IP アドレス制限では、いま使っているアドレスからアクセスできなくなります。それでも保存するには確認欄にチェックを入れてください。", " This IP allowlist would lock out the address you are using now. Tick the confirmation box to save it anyway."),
    ("err.r.busy", " 同じファイルへのアップロードが重なりました。もう一度お試しください。", " Too many uploads of this file at once; try again."),
    ("err.r.totp_exists", " 認証アプリはすでに設定されています。先に無効にしてください。", " An authenticator app is already set up; turn it off first."),
    ("err.r.mfa_required", " 組織の設定で 2 段階認証が必須です。別の方法を追加してから削除してください。", " Your organisation requires a second factor: add another before removing this one."),
    ("err.r.passkey_exists", " このパスキーはすでに登録されています。", " This passkey is already registered."),
    ("err.r.last_contract_admin", " 最後の契約管理者です。", " This is the tenant's last contract admin."),
    ("field.name", "名前", "name"),
    ("field.email", "メールアドレス", "e-mail"),
    ("field.password", "パスワード", "password"),
    ("field.label", "ラベル", "label"),
    ("field.tags", "タグ", "tags"),
    ("field.attributes", "属性", "attributes"),
    ("field.scope", "範囲", "scope"),
    ("field.scopes", "スコープ", "scopes"),
    ("field.role", "ロール", "role"),
    ("field.max_label", "ラベル上限", "label cap"),
    ("field.parent_id", "親フォルダー", "parent folder"),
    ("field.project", "プロジェクト", "project"),
    ("field.actions", "権限", "permissions"),
    ("field.expires_in_days", "有効期間", "validity"),
    ("field.locale", "言語", "language"),
    ("field.code", "コード", "code"),
    ("field.tenant", "テナント", "tenant"),
    ("field.time_zone", "タイムゾーン", "time zone"),
    ("field.ip_allowlist", "IP アドレス制限", "IP allowlist"),
    ("field.password_policy", "パスワードポリシー", "password policy"),
    ("field.session_policy", "セッション", "sessions"),
    ("field.storage_quota_bytes", "保存容量", "storage quota"),
    ("field.audit_retention_days", "監査ログの保存期間", "audit log retention"),
    ("field.access_log_retention_days", "アクセスログの保存期間", "access log retention"),
    ("field.labels", "ラベル", "labels"),
    (
        "err.csrf",
        "フォームの有効期限が切れました。もう一度お試しください。",
        "The form has expired. Please try again.",
    ),
    (
        "err.internal",
        "内部エラーが発生しました。",
        "An internal error occurred.",
    ),
    (
        "err.page_not_found",
        "ページが見つかりません。",
        "Page not found.",
    ),
    ("op.app", "Kura 運用コンソール", "Kura operator console"),
    ("op.home.title", "概要", "Overview"),
    ("op.notices.title", "お知らせ", "Notices"),
    ("op.incidents.title", "インシデント", "Incidents"),
    ("op.incident.title", "インシデント詳細", "Incident"),
    ("op.signed_in_as", "運用者:", "Operator:"),
    ("op.login.title", "運用コンソールへのサインイン", "Operator sign-in"),
    ("op.login.confirm", "このリンクで運用コンソールにサインインします。リンクは一度だけ使えます。", "Sign in to the operator console with this link. It works once."),
    ("op.login.button", "サインイン", "Sign in"),
    ("op.login.used", "このリンクは使用済みか期限切れです。", "This link has been used or has expired."),
    ("op.login.help", "運用コンソールにはパスワードがありません。サーバーで次のコマンドを実行し、表示された一回限りのリンク(10 分間有効)を開いてください。", "The operator console has no password. Run this on the server and open the one-time link it prints (valid for 10 minutes)."),
    ("op.open_incidents", "対応中のインシデント", "Open incidents"),
    ("op.overdue", "通知期限超過", "Notification overdue"),
    ("op.current_notices", "掲示中のお知らせ", "Notices on display"),
    ("op.tenants", "テナント", "Tenants"),
    ("op.tenant_id", "テナント ID", "Tenant ID"),
    ("op.tenant_name", "名称", "Name"),
    ("op.no_tenant_data", "運用コンソールからテナントのデータ(ファイル、ユーザー、ログ)は見えません。", "The operator console shows no tenant's data (files, users, logs)."),
    ("op.targets", "対象テナント", "Tenants"),
    ("op.targets_help", "選ばない場合はすべてのテナントが対象です。", "None chosen: every tenant."),
    ("op.all_tenants", "すべてのテナント", "All tenants"),
    ("op.notice.new", "お知らせを公開", "Publish a notice"),
    ("op.rule", "事前告知のルール", "Lead-time rule"),
    ("op.earliest", "今公開した場合の最も早い実施日時", "Earliest effective time if published now"),
    ("op.rule.spec_change", "7 日以上前に告知", "At least 7 days ahead"),
    ("op.rule.major_ui_change", "30 日以上前に告知", "At least 30 days ahead"),
    ("op.rule.planned_maintenance", "5 営業日以上前に告知(土日祝を除く)", "At least 5 Japanese business days ahead (weekends and holidays excluded)"),
    ("op.rule.emergency", "いつでも(事後も可)", "Any time, also after the fact"),
    ("op.until", "掲示終了", "Shown until"),
    ("op.title_ja", "件名(日本語)", "Title (Japanese)"),
    ("op.title_en", "件名(英語)", "Title (English)"),
    ("op.body_ja", "本文(日本語)", "Text (Japanese)"),
    ("op.body_en", "本文(英語)", "Text (English)"),
    ("op.notice.mail", "公開すると対象テナントの連絡先にメールが送られ、掲示終了までコンソールに表示されます。", "Publishing mails the tenants' contacts and shows the notice in their console until it ends."),
    ("op.publish", "公開", "Publish"),
    ("op.notices.all", "すべてのお知らせ", "All notices"),
    ("op.kind", "種類", "Kind"),
    ("op.title", "件名", "Title"),
    ("op.published", "公開日時", "Published"),
    ("op.severity", "重要度", "Severity"),
    ("op.status", "状況", "Status"),
    ("op.detected", "検知日時", "Detected"),
    ("op.deadline", "通知期限", "Notify by"),
    ("op.notified", "通知", "Notified"),
    ("op.minutes_after", "分後", "min after detection"),
    ("op.not_notified", "未通知", "Not yet"),
    ("op.incident.new", "インシデントを登録", "Open an incident"),
    ("op.incident.open", "登録", "Open"),
    ("op.scope", "影響範囲", "Scope"),
    ("op.default_now", "空欄なら現在", "empty: now"),
    ("op.target", "通知目標", "Notification target"),
    ("op.target_help", "1bd = 検知の翌営業日の同時刻まで、72h のように時間でも指定できます。", "1bd = the same time on the next Japanese business day; or hours such as 72h."),
    ("op.target.1bd", "1 営業日", "1 business day"),
    ("op.notify_help", "対象テナントの連絡先に最新の状況をメールし、コンソールに表示します", "Mails the latest update to the affected tenants' contacts and shows the incident in their console"),
    ("op.notify", "テナントに通知", "Notify tenants"),
    ("op.update.new", "状況を更新", "Post an update"),
    ("op.update.post", "更新を記録", "Post update"),
    ("op.text_ja", "内容(日本語)", "Text (Japanese)"),
    ("op.text_en", "内容(英語)", "Text (English)"),
    ("op.updates", "経過", "Updates"),
    ("op.status.investigating", "調査中", "Investigating"),
    ("op.status.identified", "原因特定", "Identified"),
    ("op.status.monitoring", "経過観察", "Monitoring"),
    ("op.status.resolved", "解決", "Resolved"),
    ("op.err.effective", "実施日時を入力してください(Asia/Tokyo)。", "Enter the effective time (Asia/Tokyo)."),
    ("op.err.until", "掲示終了の日時が読めません。", "The 'shown until' time could not be read."),
    ("op.err.lead_time", "事前告知の期間が足りません。この種類で今公開できる最も早い実施日時: ", "The lead time is too short. The earliest effective time for this kind if published now: "),
    ("op.err.detected", "検知日時は現在以前の日時を入力してください。", "The detection time must be a time not in the future."),
    ("ok.op_published", "お知らせを公開し、連絡先へのメールを送信待ちに入れました。", "Notice published; the mails to the contacts are queued."),
    ("op.withdraw", "取り消す", "Withdraw"),
    ("op.withdrawn", "取り消し済み", "Withdrawn"),
    ("ok.op_withdrawn", "お知らせを取り消し、対象テナントに連絡しました。", "Notice withdrawn; its tenants are being told."),
    ("ok.op_opened", "インシデントを登録しました。", "Incident opened."),
    ("ok.op_updated", "状況を記録しました。", "Update posted."),
    ("ok.op_notified", "対象テナントに通知しました。", "The affected tenants were notified."),
    ("err.op_link", "サインインできませんでした。リンクが使用済みか期限切れです。新しいリンクを作成してください。", "Sign-in failed: the link was used or has expired. Make a new one."),
    ("err.op_update_text", "日本語と英語の内容を入力してください。", "Enter the text in Japanese and English."),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages_and_unique_keys() {
        let mut keys = std::collections::HashSet::new();
        for (k, ja, en) in MESSAGES {
            assert!(keys.insert(*k), "duplicate key {k}");
            assert!(!ja.is_empty() && !en.is_empty(), "{k}");
        }
    }

    #[test]
    fn templates_only_use_known_keys() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for part in text.split("t(\"").skip(1) {
                let key = part.split('"').next().unwrap();
                assert!(
                    MESSAGES.iter().any(|(k, _, _)| *k == key),
                    "unknown key {key}"
                );
                checked += 1;
            }
        }
        assert!(checked > 50, "only {checked} keys found in templates");
    }

    #[test]
    fn accept_language() {
        assert_eq!(Lang::from_accept_language("ja,en-US;q=0.9"), Some(Lang::Ja));
        assert_eq!(
            Lang::from_accept_language("en-US,en;q=0.9,ja;q=0.8"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("fr,ja;q=0.5"), Some(Lang::Ja));
        assert_eq!(Lang::from_accept_language("fr"), None);
        assert_eq!(Tr(Lang::Ja).t("nav.logout"), "ログアウト");
        assert_eq!(Tr(Lang::En).t("nav.logout"), "Log out");
    }
}
