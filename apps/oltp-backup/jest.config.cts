module.exports = {
  displayName: 'oltp-backup',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/apps/oltp-backup',
};
